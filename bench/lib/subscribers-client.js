#!/usr/bin/env node
// A process of subscribers for bench/subscribers.js: connects --count subscribers to the
// control socket (reading, or --stalled: never reading after the answer), prints READY,
// then, reading, prints one JSON line {"complete":N} when each has --expect lines (or on
// SIGTERM, with what it has).
import { createConnection } from 'node:net';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { path: { type: 'string' }, count: { type: 'string' }, expect: { type: 'string' }, stalled: { type: 'boolean', default: false } } });
const expect = Number(values.expect);
const clients = [];
let reported = false;
const report = () => {
  if (reported) return;
  reported = true;
  process.stdout.write(`${JSON.stringify({ complete: clients.filter((c) => c.lines >= expect).length, lines: clients.map((c) => c.lines) })}\n`);
};
for (let i = 0; i < Number(values.count); i++) {
  const socket = createConnection({ path: values.path, allowHalfOpen: true });
  const client = { socket, lines: 0 };
  clients.push(client);
  socket.on('error', () => {});
  await new Promise((resolve) => socket.once('connect', resolve));
  socket.write('{"command":"subscribe","subsystems":["net"]}\n');
  await new Promise((resolve) => {
    socket.on('data', (chunk) => {
      for (let k = chunk.indexOf(10); k >= 0; k = chunk.indexOf(10, k + 1)) client.lines++;
      // Stalled: the answer is read, then nothing more (a paused socket reads no further).
      if (values.stalled) socket.pause();
      else if (client.lines >= expect && clients.every((c) => c.lines >= expect)) report();
      resolve();
    });
  });
}
// Paused sockets do not keep a process alive: this does, until SIGTERM.
setInterval(() => {}, 60_000);
process.stdout.write('READY\n');
process.on('SIGTERM', () => {
  report();
  process.exit(0);
});
