// `hotplugd serve` for tests: started in a test's network namespace (so sysfs shows that
// namespace's devices), reached over its unix socket from the test or over loopback by a
// browser started in the same namespace.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, writeFileSync, chmodSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { CLI, waitFor, type Netns } from './netns.js';

export class ServeProcess {
  readonly child: ChildProcess;
  log = '';

  constructor(netns: Netns, args: string[]) {
    this.child = spawn('ip', ['netns', 'exec', netns.name, process.execPath, CLI, 'serve', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (this.log += chunk));
    this.child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (this.log += chunk));
  }

  async started(): Promise<void> {
    await waitFor(() => this.log.includes('Serving the history') || this.child.exitCode !== null, 20_000, 'serve to listen');
    if (this.child.exitCode !== null) throw new Error(`serve exited: ${this.log}`);
  }

  async exited(): Promise<number | null> {
    if (this.child.exitCode !== null) return this.child.exitCode;
    return new Promise((resolve) => this.child.once('exit', (code) => resolve(code)));
  }

  kill(): void {
    if (this.child.exitCode === null) this.child.kill('SIGKILL');
  }
}

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One HTTP request over a unix socket. */
export function get(socketPath: string, path: string, options: { method?: string; headers?: Record<string, string> } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path, method: options.method ?? 'GET', headers: options.headers }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
      res.once('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.once('error', reject);
    req.end();
  });
}

/** Debian's Chromium, if installed. */
export const CHROMIUM = ['/usr/bin/chromium'].find((p) => existsSync(p));

/** A launcher that runs Chromium inside the namespace (Playwright talks to it over a pipe). */
export function chromiumInNetns(netns: Netns, dir: string): string {
  const path = join(dir, 'chromium-in-netns');
  writeFileSync(path, `#!/bin/sh\nexec ip netns exec ${netns.name} ${CHROMIUM} "$@"\n`);
  chmodSync(path, 0o755);
  return path;
}

/** The flags the brief asks for: nothing reaches for the network, nothing is remembered. */
export const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'];
