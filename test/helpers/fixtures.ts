// Loading the shared fixtures (../shared beside the repository).
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

export const SHARED = fileURLToPath(new URL('../../../shared', import.meta.url));
export const FIXTURES = join(SHARED, 'fixtures');

export interface KernelCapture {
  file: string;
  line: number;
  senderPort: number;
  datagram: Buffer;
}

export function loadKernelCaptures(): KernelCapture[] {
  const dir = join(FIXTURES, 'kernel-captures');
  return readdirSync(dir)
    .filter((f) => f.endsWith('.jsonl'))
    .flatMap((file) =>
      readFileSync(join(dir, file), 'utf8')
        .split('\n')
        .filter((line) => line.trim() !== '')
        .map((line, index) => {
          const record = JSON.parse(line) as { sender_port: number; datagram_b64: string };
          return { file, line: index + 1, senderPort: record.sender_port, datagram: Buffer.from(record.datagram_b64, 'base64') };
        }),
    );
}

export interface FixtureEvent {
  capture: string;
  layer: 'kernel' | 'udev';
  action?: string;
  devpath?: string;
  subsystem?: string;
  env: Record<string, string>;
  env_in_source: boolean;
  env_partial?: boolean;
  wire?: { format: 'kernel' | 'libudev'; header?: string; bytes_hex?: string; length?: number };
}

export type FixtureSysfs = Record<string, Record<string, string>>;

export interface UeventFixture {
  scenario: string;
  file: string;
  events: FixtureEvent[];
  sysfs?: FixtureSysfs;
}

export function loadUeventFixtures(): UeventFixture[] {
  const dir = join(FIXTURES, 'uevents');
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((file) => ({ ...(JSON.parse(readFileSync(join(dir, file), 'utf8')) as Omit<UeventFixture, 'file'>), file }));
}

/** Encodes a kernel datagram: `action@devpath\0` then `KEY=VALUE\0` for each pair. */
export function encodeKernelDatagram(action: string, devpath: string, env: Record<string, string>): Buffer {
  const fields = [`${action}@${devpath}`, ...Object.entries(env).map(([k, v]) => `${k}=${v}`)];
  return Buffer.from(`${fields.join('\0')}\0`, 'utf8');
}
