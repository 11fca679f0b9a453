// systemd's readiness protocol (sd_notify(3)): READY=1, STATUS=, RELOADING=1,
// STOPPING=1 and WATCHDOG=1 pings, as datagrams to $NOTIFY_SOCKET. Without that
// variable (not started by systemd with Type=notify) every call does nothing.
import type { Logger } from '../log.js';
import { sendNotify } from './system-calls.js';

export class SystemdNotifier {
  readonly enabled: boolean;
  #socket: string | undefined;
  #log: Logger;
  #watchdog: NodeJS.Timeout | undefined;
  #failed = false;

  constructor(log: Logger, env: NodeJS.ProcessEnv = process.env) {
    this.#socket = env.NOTIFY_SOCKET || undefined;
    this.enabled = this.#socket !== undefined;
    this.#log = log;
    const usec = Number(env.WATCHDOG_USEC);
    const forUs = env.WATCHDOG_PID === undefined || Number(env.WATCHDOG_PID) === process.pid;
    if (this.enabled && forUs && Number.isFinite(usec) && usec > 0) {
      // Half the interval, as sd_watchdog_enabled(3) advises. The ping comes from the
      // event loop, so a loop stuck in one event stops it and systemd restarts us.
      this.#watchdog = setInterval(() => this.#send('WATCHDOG=1'), Math.max(1, Math.floor(usec / 2000)));
      this.#watchdog.unref();
    }
  }

  get watchdogEnabled(): boolean {
    return this.#watchdog !== undefined;
  }

  ready(status: string): void {
    this.#send(`READY=1\nSTATUS=${status}\nMAINPID=${process.pid}`);
  }

  status(status: string): void {
    this.#send(`STATUS=${status}`);
  }

  reloading(): void {
    this.#send(`RELOADING=1\nMONOTONIC_USEC=${process.hrtime.bigint() / 1000n}`);
  }

  reloaded(status: string): void {
    this.#send(`READY=1\nSTATUS=${status}`);
  }

  stopping(): void {
    clearInterval(this.#watchdog);
    this.#watchdog = undefined;
    this.#send('STOPPING=1\nSTATUS=Stopping');
  }

  #send(message: string): void {
    if (this.#socket === undefined) return;
    try {
      sendNotify(this.#socket, message);
    } catch (error) {
      // Said once: a vanished notify socket must not fill the log every watchdog tick.
      if (this.#failed) return;
      this.#failed = true;
      this.#log.warn({ socket: this.#socket, err: error }, `Failed to notify systemd: ${(error as Error).message}`);
    }
  }
}
