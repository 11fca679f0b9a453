#!/usr/bin/env node
// Run inside a network namespace: writes `change UUID [I=n]` to a sysfs uevent file,
// so the kernel sends one synthetic uevent per write (tagged SYNTH_UUID, SYNTH_ARG_I).
// Prints one JSON line: start and end (CLOCK_MONOTONIC ns) and, with --rate, each
// event's send time. Usage: write-uevents.js --count N --uuid U [--rate PER_S] [--file F]
import { closeSync, openSync, writeSync } from 'node:fs';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: { count: { type: 'string' }, uuid: { type: 'string' }, rate: { type: 'string', default: '0' }, file: { type: 'string', default: '/sys/class/net/lo/uevent' } },
});
const count = Number(values.count);
const rate = Number(values.rate);
const fd = openSync(values.file, 'w');
const pause = new Int32Array(new SharedArrayBuffer(4));
const now = () => process.hrtime.bigint();

const start = now();
const sendNs = rate > 0 ? new Array(count) : undefined;
if (rate > 0) {
  // Paced: sleep until just before each slot, then spin, so sends are evenly spaced.
  const intervalNs = 1e9 / rate;
  for (let i = 0; i < count; i++) {
    const due = start + BigInt(Math.round(i * intervalNs));
    const waitMs = Number(due - now()) / 1e6 - 0.1;
    if (waitMs > 0) Atomics.wait(pause, 0, 0, waitMs);
    while (now() < due);
    sendNs[i] = String(now());
    writeSync(fd, `change ${values.uuid} I=${i}`, 0);
  }
} else {
  const message = Buffer.from(`change ${values.uuid}`);
  for (let i = 0; i < count; i++) writeSync(fd, message, 0, message.length, 0);
}
const end = now();
closeSync(fd);
process.stdout.write(`${JSON.stringify({ startNs: String(start), endNs: String(end), sendNs })}\n`);
