// The connection guard with short limits: partial headers sent slowly, an idle keep-alive
// connection, the oldest idle connection closed for a newcomer, and a newcomer refused only
// when every connection is busy.
import { createServer, type Server } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../log.js';
import { ConnectionGuard } from './connections.js';

const servers: Server[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

async function serve(limits: ConstructorParameters<typeof ConnectionGuard>[2]) {
  // /slow never answers (a live stream); anything else is answered at once.
  const server = createServer((req, res) => {
    if (req.url === '/slow') res.writeHead(200).write('streaming');
    else res.end('ok');
  });
  servers.push(server);
  const guard = new ConnectionGuard(server, await createLogger('silent', 'json'), limits);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { guard, port: (server.address() as AddressInfo).port };
}

function open(port: number): Promise<{ socket: Socket; closed: Promise<number>; data: () => string }> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1', () => {
      const at = Date.now();
      let text = '';
      socket.on('data', (chunk) => (text += chunk.toString()));
      socket.on('error', () => undefined);
      resolve({ socket, closed: new Promise((done) => socket.once('close', () => done(Date.now() - at))), data: () => text });
    });
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('the connection guard', () => {
  it('closes a connection whose headers are not complete in time, and an idle keep-alive one', async () => {
    const { guard, port } = await serve({ headerTimeoutMs: 300, idleTimeoutMs: 200 });
    const partial = await open(port);
    partial.socket.write('GET / HTTP/1.1\r\nHost: x\r\n');
    const trickle = setInterval(() => partial.socket.write('X-Slow: 1\r\n'), 50);
    const keptAlive = await open(port);
    keptAlive.socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    expect(await partial.closed).toBeLessThan(800);
    clearInterval(trickle);
    const idleFor = await keptAlive.closed;
    expect(keptAlive.data()).toMatch(/^HTTP\/1.1 200/);
    expect(idleFor).toBeLessThan(800);
    expect(guard.timedOut).toBe(2);
  });

  it('closes the oldest idle connection for a newcomer at a cap; refuses one only when all are busy', async () => {
    const { guard, port } = await serve({ maxConnections: 3, maxPerAddress: 2, headerTimeoutMs: 5_000, idleTimeoutMs: 5_000 });
    const first = await open(port);
    await sleep(20);
    const second = await open(port);
    const third = await open(port); // at the per-address cap: the oldest idle (first) goes
    expect(await first.closed).toBeGreaterThanOrEqual(0);
    third.socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    await sleep(100);
    expect(third.data()).toMatch(/^HTTP\/1.1 200/);
    expect(guard.evicted).toBe(1);
    // Both busy with a stream: a newcomer cannot be given room.
    second.socket.write('GET /slow HTTP/1.1\r\nHost: x\r\n\r\n');
    third.socket.write('GET /slow HTTP/1.1\r\nHost: x\r\n\r\n');
    await sleep(100);
    const fourth = await open(port);
    await fourth.closed;
    expect(guard.refused).toBe(1);
    expect(guard.open).toBe(2);
  });
});
