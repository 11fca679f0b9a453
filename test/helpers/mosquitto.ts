// A real Mosquitto broker (Debian's package) for tests: started inside a test's network
// namespace on a loopback port, with its own config and persistence directory; the test
// holds its real PID to kill and restart it.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Netns } from './netns.js';
import { waitFor } from './netns.js';

export const MOSQUITTO = ['/usr/sbin/mosquitto', '/usr/bin/mosquitto'].find((p) => existsSync(p));

export class Mosquitto {
  readonly port: number;
  readonly url: string;
  #netns: Netns;
  #dir: string;
  #child: ChildProcess | undefined;
  log = '';

  /** `extra`: more lines for mosquitto.conf (TLS listeners...). */
  constructor(netns: Netns, dir: string, options: { persistence: boolean; port?: number; extra?: string[] }) {
    this.#netns = netns;
    this.#dir = dir;
    this.port = options.port ?? 18830 + Math.floor(Math.random() * 1000);
    this.url = `mqtt://127.0.0.1:${this.port}`;
    mkdirSync(join(dir, 'data'), { recursive: true });
    const conf = options.extra ?? [`listener ${this.port} 127.0.0.1`, 'allow_anonymous true'];
    writeFileSync(join(dir, 'mosquitto.conf'), [
      ...conf,
      `persistence ${options.persistence ? 'true' : 'false'}`,
      `persistence_location ${join(dir, 'data')}/`,
      'autosave_interval 1',
      'log_dest stderr',
      'user root', // as root it would switch to the mosquitto user, who cannot write the temp dir
      '',
    ].join('\n'));
  }

  async start(): Promise<void> {
    netnsUp(this.#netns);
    this.#child = spawn('ip', ['netns', 'exec', this.#netns.name, MOSQUITTO!, '-c', join(this.#dir, 'mosquitto.conf')], { stdio: ['ignore', 'ignore', 'pipe'] });
    this.#child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (this.log += chunk));
    await waitFor(() => this.log.includes('running') || this.#child?.exitCode !== null, 10_000, 'mosquitto to start');
    if (this.#child.exitCode !== null) throw new Error(`mosquitto exited: ${this.log}`);
  }

  /** SIGKILL: the broker dies as in a power cut. */
  async kill(): Promise<void> {
    const child = this.#child;
    if (!child || child.exitCode !== null) return;
    child.kill('SIGKILL');
    await new Promise((resolve) => child.once('exit', resolve));
    this.log = '';
  }

  /** SIGSTOP / SIGCONT: a broker that hangs, its connections open. */
  freeze(frozen: boolean): void {
    if (this.#child && this.#child.exitCode === null) this.#child.kill(frozen ? 'SIGSTOP' : 'SIGCONT');
  }

  stop(): void {
    if (this.#child && this.#child.exitCode === null) {
      this.#child.kill('SIGCONT');
      this.#child.kill('SIGKILL');
    }
  }
}

function netnsUp(netns: Netns): void {
  netns.ip('link', 'set', 'lo', 'up');
}
