// systemd units started with a device (udev's SYSTEMD_WANTS) and stopped when it goes:
// `systemctl --no-block start|stop UNIT`, so the event queue never waits for systemd.
import type { ActionResult } from './results.js';
import type { ProgramPool } from './run.js';
import { findProgram } from './system.js';

const SYSTEMCTL_CANDIDATES = ['/usr/bin/systemctl', '/bin/systemctl'];
const SYSTEMCTL_TIMEOUT_MS = 30_000;

export class UnitStarter {
  readonly systemctl: string | null;
  #pool: ProgramPool;
  #byDevice = new Map<string, Map<string, string>>(); // devpath → unit → rule

  /** `systemctl`: its path, null for none, or undefined to look in the usual places. */
  constructor(pool: ProgramPool, systemctl?: string | null) {
    this.#pool = pool;
    this.systemctl = systemctl === undefined ? findProgram(SYSTEMCTL_CANDIDATES) : systemctl;
  }

  async start(devpath: string, unit: string, rule: string): Promise<ActionResult> {
    let units = this.#byDevice.get(devpath);
    if (units === undefined) this.#byDevice.set(devpath, (units = new Map()));
    units.set(unit, rule);
    return this.#systemctl('start', unit, rule);
  }

  /** The device is gone: stop the units started for it. */
  async stopDevice(devpath: string): Promise<ActionResult[]> {
    const units = this.#byDevice.get(devpath);
    this.#byDevice.delete(devpath);
    return Promise.all([...(units ?? [])].map(([unit, rule]) => this.#systemctl('stop', unit, rule)));
  }

  async #systemctl(verb: 'start' | 'stop', unit: string, rule: string): Promise<ActionResult> {
    const target = `${verb} ${unit}`;
    if (this.systemctl === null) return { kind: 'unit', target, rule, ok: false, error: 'systemctl not found (not a systemd system)', durationMs: 0 };
    const result = await this.#pool.run([this.systemctl, '--no-block', verb, unit], { env: {}, timeoutMs: SYSTEMCTL_TIMEOUT_MS, rule });
    return { ...result, kind: 'unit', target };
  }
}
