// The shipped unit must pass `systemd-analyze verify` (with ExecStart pointing at this
// build, as an install would), and keep the settings the README promises.
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CLI, makeTempDir } from './helpers/netns.js';

const UNIT = join(import.meta.dirname, '..', 'systemd', 'hotplugd.service');
const analyze = ['/usr/bin/systemd-analyze', '/bin/systemd-analyze'].find((path) => {
  try {
    execFileSync(path, ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
});
if (!analyze && process.env.CI === 'true') throw new Error('CI=true: systemd-analyze (Debian package systemd) must be installed');

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

describe('systemd/hotplugd.service', () => {
  const text = readFileSync(UNIT, 'utf8');

  it.skipIf(!analyze)('passes systemd-analyze verify', () => {
    const dir = makeTempDir('unit');
    cleanups.push(() => dir.remove());
    const unit = join(dir.path, 'hotplugd.service');
    writeFileSync(unit, text.replace('/usr/local/bin/hotplugd', CLI));
    const output = execFileSync(analyze!, ['verify', '--man=no', unit], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    expect(output.trim()).toBe('');
  });

  it('is Type=notify with reload by SIGHUP, restart on failure and no MemoryDenyWriteExecute', () => {
    expect(text).toMatch(/^Type=notify$/m);
    expect(text).toMatch(/^ExecReload=\/bin\/kill -HUP \$MAINPID$/m);
    expect(text).toMatch(/^Restart=on-failure$/m);
    expect(text).toMatch(/^WatchdogSec=\d+$/m);
    expect(text).not.toMatch(/^MemoryDenyWriteExecute=/m);
  });

  it("runs node as the memory figures were measured (bench/lib/system.js's UNIT_NODE_ARGS and UNIT_ENV)", () => {
    expect(text).toMatch(/^Environment=NODE_OPTIONS=--max-semi-space-size=2$/m);
    expect(text).toMatch(/^Environment=MALLOC_ARENA_MAX=2$/m);
  });
});
