// The classic udev front end on real rule files: Debian's own rules (the udev package)
// load with no errors, and every device of this machine goes through them.
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { evaluate } from '../../src/engine/evaluate.js';
import { UDEV_RULES_DIRS } from '../../src/defaults.js';
import { loadRules } from '../../src/frontends/load.js';
import { formatDiagnostic } from '../../src/rules/model.js';
import { machineView } from '../../src/rules/system-view.js';
import { Sysfs } from '../../src/uevent/sysfs.js';

const DEBIAN_RULES = '/usr/lib/udev/rules.d';
// CI installs Debian's udev package; elsewhere the test needs it too.
const haveUdev = existsSync(DEBIAN_RULES) || process.env.CI === 'true';

describe.runIf(haveUdev)("Debian's udev rules", () => {
  const loaded = loadRules(UDEV_RULES_DIRS);

  it('load with no errors', () => {
    const errors = loaded.diagnostics.filter((d) => d.severity === 'error').map(formatDiagnostic);
    expect(errors).toEqual([]);
    expect(loaded.ruleSet.files.length).toBeGreaterThanOrEqual(30);
    expect(loaded.ruleSet.rules.length).toBeGreaterThan(400);
    expect(loaded.ok).toBe(true);
  });

  it("plan every device of this machine (no programs run): by-path links for disks, nothing thrown", () => {
    const sysfs = new Sysfs('/sys');
    const system = machineView('/sys');
    let planned = 0;
    for (const devpath of sysfs.enumerate()) {
      const event = sysfs.synthesizeEvent(devpath, 'add', 'coldplug');
      if (event === undefined) continue;
      const { plan } = evaluate(loaded.ruleSet, { event, device: sysfs.device(devpath), system });
      planned++;
      expect(plan.device).toBe(devpath);
      // 60-persistent-storage.rules: a virtio or SCSI disk gets /dev/disk/by-path/...
      if (event.subsystem === 'block' && event.devtype === 'disk' && plan.properties.ID_PATH) {
        expect(plan.symlinks.some((l) => l.startsWith(`/dev/disk/by-path/${plan.properties.ID_PATH}`))).toBe(true);
      }
    }
    expect(planned).toBeGreaterThan(50);
  });
});

describe('udev rules diagnostics', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hotplugd-udev-rules-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('report file:line:column, drop the bad line and load the rest, as udev does', () => {
    writeFileSync(
      join(dir, '10-mixed.rules'),
      [
        '# a comment',
        'KERNEL=="ttyUSB*", SYMLINK+="serial/%k"',
        'KERNEL="sda", SYMLINK+="no"',
        'SUBSYSTEM=="usb", FOO="bar"',
        'KERNEL=="sdb", SYMLINK+=="no"',
        'IMPORT{builtin}="no_such_builtin"',
        'ACTION=="add", GOTO="nowhere"',
        'KERNEL=="ttyACM*", MODE="0660", \\',
        '  GROUP="dialout"',
        '',
      ].join('\n'),
    );
    const { ruleSet, diagnostics, ok } = loadRules([dir]);
    const lines = diagnostics.map(formatDiagnostic);
    expect(lines).toEqual([
      expect.stringMatching(/10-mixed\.rules:3:1: error: KERNEL="sda": KERNEL is a match key/),
      expect.stringMatching(/10-mixed\.rules:4:19: error: FOO="bar": unknown key "FOO"/),
      expect.stringMatching(/10-mixed\.rules:5:25: error: SYMLINK: expected a value in double quotes/),
      expect.stringMatching(/10-mixed\.rules:6:1: error: .*unknown builtin "no_such_builtin"/),
      expect.stringMatching(/10-mixed\.rules:7:1: error: GOTO="nowhere" has no matching LABEL/),
    ]);
    // Rules 2 and 8-9 (continued) load, and the GOTO rule stays without its GOTO.
    expect(ruleSet.rules.map((r) => r.at.line)).toEqual([2, 7, 8]);
    expect(ok).toBe(true);
  });
});

describe('udev attribute links', () => {
  it('$attr{device} of an interface whose ATTRS{device} matched its PCI parent is the parent value, not the link target', () => {
    const root = mkdtempSync(join(tmpdir(), 'hotplugd-udev-links-'));
    const rules = mkdtempSync(join(tmpdir(), 'hotplugd-udev-links-rules-'));
    try {
      const pci = '/devices/pci0000:00/0000:00:03.0';
      const net = `${pci}/virtio2/net/eth0`;
      mkdirSync(join(root, net), { recursive: true });
      for (const [dir, subsystem] of [[pci, 'pci'], [`${pci}/virtio2`, 'virtio'], [net, 'net']] as const) {
        writeFileSync(join(root, dir, 'uevent'), subsystem === 'net' ? 'INTERFACE=eth0\nIFINDEX=2\n' : '');
        mkdirSync(join(root, 'class', subsystem), { recursive: true });
        symlinkSync(relative(join(root, dir), join(root, 'class', subsystem)), join(root, dir, 'subsystem'));
      }
      writeFileSync(join(root, pci, 'device'), '0x1041\n');
      symlinkSync('../../../virtio2', join(root, net, 'device'));
      writeFileSync(join(rules, '50-test.rules'), 'SUBSYSTEM=="net", ATTRS{device}=="0x1041", ENV{PCI_DEVICE}="$attr{device}"\n');
      const sysfs = new Sysfs(root);
      const event = sysfs.synthesizeEvent(net, 'add', 'kernel')!;
      const { plan } = evaluate(loadRules([rules]).ruleSet, { event, device: sysfs.device(net), devRoot: '/dev', system: machineView(root) });
      expect(plan.properties.PCI_DEVICE).toBe('0x1041');
    } finally {
      rmSync(root, { recursive: true, force: true });
      rmSync(rules, { recursive: true, force: true });
    }
  });
});
