import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../log.js';
import { UDEV_CTRL, UDEV_CTRL_MAGIC, UdevQueueFlag, parseUdevControlMessage } from './control-socket.js';

function message(type: number, magic = UDEV_CTRL_MAGIC, size = 280, text = ''): Buffer {
  const bytes = Buffer.alloc(size);
  bytes.write('udev-252', 0, 'latin1');
  if (size >= 24) {
    bytes.writeUInt32LE(magic, 16);
    bytes.writeInt32LE(type, 20);
  }
  if (size >= 280) bytes.write(text, 24, 'utf8');
  return bytes;
}

describe("udev's control messages", () => {
  it('decode type, integer and text values; refuse a wrong size or magic', () => {
    expect(parseUdevControlMessage(message(UDEV_CTRL.PING))).toMatchObject({ type: 7, name: 'PING' });
    const level = message(UDEV_CTRL.SET_LOG_LEVEL);
    level.writeInt32LE(7, 24);
    expect(parseUdevControlMessage(level)).toMatchObject({ name: 'SET_LOG_LEVEL', intval: 7 });
    expect(parseUdevControlMessage(message(UDEV_CTRL.SET_ENV, UDEV_CTRL_MAGIC, 280, 'KEY=value'))).toMatchObject({ name: 'SET_ENV', text: 'KEY=value' });
    expect(parseUdevControlMessage(message(7, UDEV_CTRL_MAGIC, 279))).toEqual(new Error('expected a 280-byte message, got 279 bytes'));
    expect(parseUdevControlMessage(message(7, 0xdeadbeef))).toEqual(new Error('wrong magic 0xdeadbeef'));
    expect(parseUdevControlMessage(message(99))).toMatchObject({ name: 'unknown type 99' });
  });
});

describe('/run/udev/queue', () => {
  it('goes only after the history is committed: settled means recorded', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hotplugd-queue-'));
    try {
      const path = join(dir, 'queue');
      const seen: boolean[] = [];
      const flag = new UdevQueueFlag(path, await createLogger('silent', 'json'), () => void seen.push(existsSync(path)));
      flag.busy();
      expect(existsSync(path)).toBe(true);
      flag.idle();
      expect(seen).toEqual([true]); // the commit ran while the flag was still there
      expect(existsSync(path)).toBe(false);
      flag.idle(); // already gone: fine
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('waits for what the hook waits for (the broadcast), and stays when events came meanwhile', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hotplugd-queue-'));
    try {
      const path = join(dir, 'queue');
      let release: () => void = () => {};
      const flag = new UdevQueueFlag(path, await createLogger('silent', 'json'), () => new Promise<void>((resolve) => (release = resolve)));
      flag.busy();
      flag.idle();
      expect(existsSync(path)).toBe(true);
      release();
      await new Promise((resolve) => setImmediate(resolve));
      expect(existsSync(path)).toBe(false);
      flag.busy();
      flag.idle();
      const first = release;
      flag.busy(); // a new event before the broadcast ended
      first();
      await new Promise((resolve) => setImmediate(resolve));
      expect(existsSync(path)).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
