// systemd units with a stand-in systemctl (a real process that logs its argv).
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { makeTempDir } from '../../test/helpers/netns.js';
import { ProgramPool } from './run.js';
import { UnitStarter } from './units.js';

let dir: { path: string; remove(): void };
let systemctl: string;
beforeEach(() => {
  dir = makeTempDir('systemctl');
  systemctl = join(dir.path, 'systemctl');
  writeFileSync(join(dir.path, 'log'), '');
  writeFileSync(systemctl, `#!${process.execPath}\nrequire('fs').appendFileSync(${JSON.stringify(join(dir.path, 'log'))}, process.argv.slice(2).join(' ') + '\\n');\n`);
  chmodSync(systemctl, 0o755);
});
afterEach(() => dir.remove());

describe('UnitStarter', () => {
  it('starts units with their device and stops them when it goes, without waiting for systemd', async () => {
    const units = new UnitStarter(new ProgramPool(), systemctl);
    expect(await units.start('/devices/a', 'gpsd@ttyUSB0.service', 'r (f:1:1)')).toMatchObject({ kind: 'unit', target: 'start gpsd@ttyUSB0.service', ok: true });
    await units.start('/devices/b', 'other.service', 'r (f:1:1)');
    expect((await units.stopDevice('/devices/a')).map((r) => r.target)).toEqual(['stop gpsd@ttyUSB0.service']);
    expect(await units.stopDevice('/devices/a')).toEqual([]);
    expect(readFileSync(join(dir.path, 'log'), 'utf8').trim().split('\n')).toEqual([
      '--no-block start gpsd@ttyUSB0.service',
      '--no-block start other.service',
      '--no-block stop gpsd@ttyUSB0.service',
    ]);
  });

  it('says so on a system without systemd', async () => {
    const units = new UnitStarter(new ProgramPool(), null);
    expect(await units.start('/devices/a', 'x.service', 'r')).toMatchObject({ ok: false, error: 'systemctl not found (not a systemd system)' });
  });
});
