import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FanOut, type LineKeys, type Reader } from './fanout.js';

let dir: string;
let server: Server;
const sockets: Socket[] = [];

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'hotplugd-fanout-'));
  server = createServer();
  await new Promise<void>((resolve) => server.listen(join(dir, 's'), resolve));
});
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await new Promise((resolve) => server.close(resolve));
  rmSync(dir, { recursive: true, force: true });
});

/** A connected pair: the daemon's end (written by the fan-out) and the client's end. */
async function pair(): Promise<{ daemonEnd: Socket; clientEnd: Socket; received: () => string }> {
  const accepted = new Promise<Socket>((resolve) => server.once('connection', resolve));
  const clientEnd = createConnection(join(dir, 's'));
  const daemonEnd = await accepted;
  sockets.push(clientEnd, daemonEnd);
  let text = '';
  clientEnd.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
  return { daemonEnd, clientEnd, received: () => text };
}

function reader(socket: Socket, subsystem: string | undefined, options: Partial<Reader> = {}): Reader {
  return {
    socket, filterKey: subsystem ?? '*', matches: (keys: LineKeys) => subsystem === undefined || keys.subsystem === subsystem,
    results: false, cursor: 0, live: true, blocked: false, ...options,
  };
}

const keys = (subsystem: string): LineKeys => ({ subsystem, action: 'add', tags: [] });
const line = (text: string) => Buffer.from(`${text}\n`);
const settle = () => new Promise((resolve) => setTimeout(resolve, 50));

describe('fan-out to subscribers', () => {
  it('gives each reader the lines its filter passes, in order, once; results only to those who asked', async () => {
    const fanOut = new FanOut(1 << 20, () => {});
    const all = await pair();
    const tty = await pair();
    const ttyToo = await pair();
    const withResults = await pair();
    fanOut.add(reader(all.daemonEnd, undefined));
    fanOut.add(reader(tty.daemonEnd, 'tty'));
    fanOut.add(reader(ttyToo.daemonEnd, 'tty'));
    fanOut.add(reader(withResults.daemonEnd, undefined, { results: true, filterKey: '*+results' }));
    fanOut.append(line('a net'), keys('net'), false);
    fanOut.append(line('b tty'), keys('tty'), false);
    fanOut.append(line('c result of b'), keys('tty'), true);
    await settle();
    fanOut.append(line('d tty'), keys('tty'), false);
    await settle();
    expect(all.received()).toBe('a net\nb tty\nd tty\n');
    expect(tty.received()).toBe('b tty\nd tty\n');
    expect(ttyToo.received()).toBe('b tty\nd tty\n');
    expect(withResults.received()).toBe('a net\nb tty\nc result of b\nd tty\n');
    expect(fanOut.heldBytes).toBe(0);
  });

  it('keeps lines for a reader still replaying and sends them when it goes live', async () => {
    const fanOut = new FanOut(1 << 20, () => {});
    const late = await pair();
    const replaying = reader(late.daemonEnd, undefined, { live: false, cursor: fanOut.end });
    fanOut.add(replaying);
    fanOut.append(line('one'), keys('net'), false);
    fanOut.append(line('two'), keys('net'), false);
    await settle();
    expect(late.received()).toBe('');
    expect(fanOut.heldBytes).toBe(8);
    replaying.live = true;
    fanOut.schedule();
    await settle();
    expect(late.received()).toBe('one\ntwo\n');
    expect(fanOut.heldBytes).toBe(0);
  });

  it('drops a reader that falls further behind than the bound, and holds no more than that for any number of stalled readers', async () => {
    const dropped: string[] = [];
    const fanOut = new FanOut(256 * 1024, (_, why) => dropped.push(why));
    // One at a time: each pair() takes the next connection the server accepts.
    const stalled = [];
    for (let i = 0; i < 50; i++) stalled.push(await pair());
    for (const s of stalled) {
      s.clientEnd.pause();
      fanOut.add(reader(s.daemonEnd, undefined));
    }
    const reading = await pair();
    fanOut.add(reader(reading.daemonEnd, undefined));
    const payload = 'x'.repeat(1000);
    let maxHeld = 0;
    for (let i = 0; i < 4000; i++) {
      fanOut.append(line(`${i} ${payload}`), keys('net'), false);
      if (i % 100 === 99) {
        await settle();
        maxHeld = Math.max(maxHeld, fanOut.heldBytes);
      }
    }
    await settle();
    expect(dropped).toHaveLength(50);
    expect(dropped[0]).toMatch(/^it did not read \(\d+ bytes waiting\)$/);
    // The bound plus one turn's lines, however many readers stalled.
    expect(maxHeld).toBeLessThan(256 * 1024 + 100 * 1010);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(reading.received().split('\n').filter(Boolean)).toHaveLength(4000);
  });
});
