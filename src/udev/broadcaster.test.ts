// The libudev broadcast in a storm: the first event after a quiet millisecond is sent at once,
// the ones that follow within it wait and go together (in order, one sendmmsg on libuv's pool)
// when the timer fires, when the queue flag goes (drain) or at close. Real netlink sockets
// (root): a listener on group 2 reads what the kernel holds for it.
import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../log.js';
import { KernelSocket } from '../os/netlink.js';
import { createProperties, eventFromProperties } from '../uevent/event.js';
import { Broadcaster } from './broadcaster.js';

const sockets: { close(): void }[] = [];
afterEach(() => {
  for (const s of sockets.splice(0)) s.close();
});

function listener(tag: string) {
  const heard: string[] = [];
  const socket = new KernelSocket(
    {
      onDatagram(bytes) {
        const text = bytes.toString('latin1');
        if (text.startsWith('libudev\0') && text.includes(`TEST_TAG=${tag}\0`)) heard.push(/\0N=(\d+)\0/.exec(text)![1]!);
      },
      onOverflow() {},
      onError() {},
    },
    1024 * 1024,
    2,
  );
  socket.resume();
  sockets.push(socket);
  return { heard, read: () => socket.readNow() };
}

function event(tag: string, n: number, extra: Record<string, string> = {}) {
  const properties = Object.assign(createProperties(), { ACTION: 'change', DEVPATH: '/devices/virtual/net/lo', SUBSYSTEM: 'net', SEQNUM: String(1000 + n), TEST_TAG: tag, N: String(n), ...extra });
  return eventFromProperties(properties, Date.now(), 'kernel');
}

describe('the libudev broadcast', () => {
  it('sends at once after a quiet millisecond, and a burst together, in order, when it is flushed or closed', async () => {
    const tag = randomUUID();
    const { heard, read } = listener(tag);
    let clock = 100;
    const broadcaster = new Broadcaster(await createLogger('silent', 'json'), () => clock);
    sockets.push(broadcaster);
    broadcaster.send(event(tag, 1), undefined);
    read();
    expect(heard).toEqual(['1']);
    clock += 0.3;
    broadcaster.send(event(tag, 2), undefined);
    broadcaster.send(event(tag, 3), undefined);
    read();
    expect(heard).toEqual(['1']);
    await broadcaster.drain(); // what the queue flag waits for before it goes
    read();
    expect(heard).toEqual(['1', '2', '3']);
    clock += 0.2;
    broadcaster.send(event(tag, 4), undefined);
    // The timer sends what waits.
    await new Promise((resolve) => setTimeout(resolve, 20));
    read();
    expect(heard).toEqual(['1', '2', '3', '4']);
    clock += 5;
    broadcaster.send(event(tag, 5), undefined);
    read();
    expect(heard).toEqual(['1', '2', '3', '4', '5']);
    // A storm: hundreds of events, in order, every one once; close sends what still waits.
    for (let n = 6; n < 506; n++) {
      clock += 0.01;
      broadcaster.send(event(tag, n), undefined);
      if (n % 50 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    expect(broadcaster.drain()).toBeInstanceOf(Promise);
    broadcaster.send(event(tag, 506), undefined);
    broadcaster.close();
    await new Promise((resolve) => setTimeout(resolve, 50));
    read();
    expect(heard).toEqual(Array.from({ length: 506 }, (_, i) => String(i + 1)));
    expect(broadcaster.failures).toBe(0);
  });

  it('sends the rest of a batch when one datagram cannot go (too large for the socket), and counts that one', async () => {
    const tag = randomUUID();
    const { heard, read } = listener(tag);
    let clock = 100;
    const broadcaster = new Broadcaster(await createLogger('silent', 'json'), () => clock);
    sockets.push(broadcaster);
    broadcaster.send(event(tag, 1), undefined);
    clock += 0.3;
    // Rules may add long values (a program's output): past the socket's send buffer, EMSGSIZE.
    broadcaster.send(event(tag, 2, { HUGE: 'x'.repeat(512 * 1024) }), undefined);
    broadcaster.send(event(tag, 3), undefined);
    await broadcaster.drain();
    read();
    expect(heard).toEqual(['1', '3']);
    expect(broadcaster.failures).toBe(1);
  });
});
