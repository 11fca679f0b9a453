// Attribute writes: only inside the device's directory; `/*` in a name expands as udev's does.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Sysfs } from '../uevent/sysfs.js';
import { applyAttributes, expandSubdirectory } from './attrs.js';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe('attribute writes', () => {
  it("expands block/*/uevent to the SCSI device's disk, as Debian's 60-block.rules needs", () => {
    const root = mkdtempSync(join(tmpdir(), 'hotplugd-attrs-'));
    dirs.push(root);
    const scsi = '/devices/pci0000:00/0000:00:06.0/usb2/2-1/2-1:1.0/host6/target6:0:0/6:0:0:0';
    mkdirSync(join(root, scsi, 'block/sda'), { recursive: true });
    mkdirSync(join(root, scsi, 'block/.hidden'), { recursive: true });
    writeFileSync(join(root, scsi, 'block/sda/uevent'), '');
    writeFileSync(join(root, scsi, 'block/.hidden/uevent'), '');
    const base = join(root, scsi);
    expect(expandSubdirectory(base, 'block/*/uevent')).toBe('block/sda/uevent');
    expect(expandSubdirectory(base, 'block/*/missing')).toBe('block/*/missing');
    expect(expandSubdirectory(base, 'nothing/*/uevent')).toBe('nothing/*/uevent');
    expect(expandSubdirectory(base, 'rescan')).toBe('rescan');
    const [result] = applyAttributes(new Sysfs(root), scsi, [{ name: 'block/*/uevent', value: 'change', rule: '60-block.rules:8' }]);
    expect(result).toMatchObject({ kind: 'attr', ok: true });
    expect(readFileSync(join(root, scsi, 'block/sda/uevent'), 'utf8')).toBe('change');
  });
});
