#!/usr/bin/env node
// Run inside a network namespace: listens where a udev daemon passes processed events on
// (netlink group 2, libudev's format), counts those tagged with --uuid and notes when
// each arrived (CLOCK_MONOTONIC ns, by SYNTH_ARG_I when present). Prints READY once
// bound; on --expect events or SIGTERM, one JSON line. Usage: listen.js --uuid U [--expect N]
import { parseArgs } from 'node:util';
import { KernelSocket } from '../../dist/os/netlink.js';

const { values } = parseArgs({ options: { uuid: { type: 'string' }, expect: { type: 'string', default: '0' } } });
const expect = Number(values.expect);
const tag = `SYNTH_UUID=${values.uuid}\0`;
let received = 0;
let overflows = 0;
let firstNs;
let lastNs;
const arrivals = {};

function finish() {
  socket.close();
  // Exit only once written: a pipe takes a large result in several writes.
  process.stdout.write(`${JSON.stringify({ received, overflows, firstNs: String(firstNs ?? 0), lastNs: String(lastNs ?? 0), arrivals })}\n`, () => process.exit(0));
}

const socket = new KernelSocket(
  {
    onDatagram(bytes) {
      const at = process.hrtime.bigint();
      const text = bytes.latin1Slice(0, bytes.length);
      if (!text.startsWith('libudev\0') || !text.includes(tag)) return;
      received++;
      firstNs ??= at;
      lastNs = at;
      const i = /\0SYNTH_ARG_I=(\d+)\0/.exec(text);
      if (i) arrivals[i[1]] = String(at);
      if (expect > 0 && received >= expect) finish();
    },
    onOverflow(reports) {
      overflows += reports;
    },
    onError(error) {
      console.error(`listen: ${error.message}`);
    },
  },
  128 * 1024 * 1024,
  2,
);
socket.resume();
process.on('SIGTERM', finish);
process.stdout.write('READY\n');
