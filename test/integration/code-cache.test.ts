// The daemon's code cache: the daemon runs under its own heap flag, and V8 refuses code
// compiled under other flags, so what one daemon keeps must be what the next one takes.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DaemonProcess, Netns, canUseNamespaces, makeTempDir } from '../helpers/netns.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0).reverse()) cleanup();
});

describe.skipIf(!canUseNamespaces())('the daemon\'s code cache', () => {
  // --forward loads mqtt on use: the load that failed from a cached script.
  it('is written by one daemon and taken by the next, not written again, and the next loads mqtt', async () => {
    const netns = new Netns('code-cache');
    cleanups.push(() => netns.delete());
    const dir = makeTempDir('code-cache');
    cleanups.push(() => dir.remove());
    const cache = join(dir.path, 'code-cache');
    const env = { ...process.env, HOTPLUGD_CODE_CACHE: cache };
    const files = (): string[] => readdirSync(cache).filter((name) => name.startsWith('code-'));

    const first = new DaemonProcess(netns, join(dir.path, 'history.db'), ['--no-watch'], env);
    cleanups.push(() => first.kill());
    await first.waitForLog('hotplugd started');
    expect(await first.stop()).toBe(0);
    expect(files()).toHaveLength(1);
    const written = statSync(join(cache, files()[0] as string));

    const second = new DaemonProcess(netns, join(dir.path, 'history.db'), ['--no-watch', '--forward', 'mqtt://127.0.0.1:9'], env);
    cleanups.push(() => second.kill());
    await second.waitForLog('hotplugd started');
    expect(await second.stop()).toBe(0);
    expect(files()).toHaveLength(1);
    expect(statSync(join(cache, files()[0] as string)).ino).toBe(written.ino);
  });
});
