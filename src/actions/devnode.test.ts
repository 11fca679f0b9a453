// The device node action: a node is made for an `add` of a device still there, never for
// a later event of a device whose node the kernel removed (a USB device's `unbind`).
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readlinkSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { evaluate } from '../engine/evaluate.js';
import { RuleSet } from '../rules/ruleset.js';
import { compileUdevRules } from '../frontends/udev/compile.js';
import { staticAccounts } from '../os/accounts.js';
import { createProperties, eventFromProperties } from '../uevent/event.js';
import { applyDevnumLink, applyDeviceNode } from './devnode.js';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function usbDeviceEvent(action: string) {
  const properties = Object.assign(createProperties(), {
    ACTION: action, DEVPATH: '/devices/pci0000:00/0000:00:06.0/usb1/1-2', SUBSYSTEM: 'usb', DEVTYPE: 'usb_device', DEVNAME: 'bus/usb/001/002', MAJOR: '189', MINOR: '1', SEQNUM: '10',
  });
  return eventFromProperties(properties, Date.now(), 'kernel');
}

describe.runIf(process.getuid?.() === 0)('the device node', () => {
  it('is made while the device is there, never by its unbind nor once it is gone', () => {
    const devRoot = mkdtempSync(join(tmpdir(), 'hotplugd-devnode-'));
    dirs.push(devRoot);
    const node = join(devRoot, 'bus/usb/001/002');
    const plan = (action: string) => evaluate(new RuleSet([]), { event: usbDeviceEvent(action), device: undefined, devRoot }, () => undefined).plan;
    // The device went before its add was handled: nothing is made.
    expect(applyDeviceNode(devRoot, usbDeviceEvent('add'), plan('add'), () => false)).toBeUndefined();
    expect(existsSync(node)).toBe(false);
    expect(applyDeviceNode(devRoot, usbDeviceEvent('add'), plan('add'), () => true)).toMatchObject({ ok: true });
    expect(statSync(node).isCharacterDevice()).toBe(true);
    // The kernel removed the node (devtmpfs) before it sent unbind: unbind must not make it
    // again, nor any event handled once the device is gone from sysfs.
    rmSync(node);
    expect(applyDeviceNode(devRoot, usbDeviceEvent('unbind'), plan('unbind'), () => true)).toBeUndefined();
    for (const action of ['change', 'bind']) expect(applyDeviceNode(devRoot, usbDeviceEvent(action), plan(action), () => false)).toBeUndefined();
    expect(existsSync(node)).toBe(false);
    // A change of a device that is there (a loop device given its backing file) makes a missing node.
    expect(applyDeviceNode(devRoot, usbDeviceEvent('change'), plan('change'), () => true)).toMatchObject({ ok: true });
    expect(statSync(node).isCharacterDevice()).toBe(true);
  });

  it('is an action only when it changed something: a node that has its owner, group and mode already is none', () => {
    const devRoot = mkdtempSync(join(tmpdir(), 'hotplugd-devnode-'));
    dirs.push(devRoot);
    const node = join(devRoot, 'bus/usb/001/002');
    const rules = new RuleSet(compileUdevRules('SUBSYSTEM=="usb", MODE="0664", GROUP="plugdev"\n', '50-test.rules', staticAccounts({ root: 0 }, { plugdev: 46 })).rules);
    const plan = (action: string) => evaluate(rules, { event: usbDeviceEvent(action), device: undefined, devRoot }, () => undefined).plan;
    expect(applyDeviceNode(devRoot, usbDeviceEvent('add'), plan('add'), () => true)).toMatchObject({ kind: 'node', ok: true });
    expect([statSync(node).mode & 0o7777, statSync(node).gid]).toEqual([0o664, 46]);
    expect(applyDeviceNode(devRoot, usbDeviceEvent('change'), plan('change'), () => true)).toBeUndefined();
    chmodSync(node, 0o600); // changed behind its back: put right, and said
    expect(applyDeviceNode(devRoot, usbDeviceEvent('change'), plan('change'), () => true)).toMatchObject({ kind: 'node', ok: true });
    expect(statSync(node).mode & 0o7777).toBe(0o664);
  });

  it('links the node by its number (/dev/char/MAJ:MIN) while it is there, and removes the link with the device', () => {
    const devRoot = mkdtempSync(join(tmpdir(), 'hotplugd-devnode-'));
    dirs.push(devRoot);
    const node = join(devRoot, 'bus/usb/001/002');
    const plan = (action: string) => evaluate(new RuleSet([]), { event: usbDeviceEvent(action), device: undefined, devRoot }, () => undefined).plan;
    const link = join(devRoot, 'char/189:1');
    // No node (it went first): no link to nowhere.
    expect(applyDevnumLink(devRoot, usbDeviceEvent('add'), plan('add'))).toBeUndefined();
    expect(existsSync(link)).toBe(false);
    applyDeviceNode(devRoot, usbDeviceEvent('add'), plan('add'), () => true);
    expect(applyDevnumLink(devRoot, usbDeviceEvent('add'), plan('add'))).toBeUndefined();
    expect(readlinkSync(link)).toBe('../bus/usb/001/002');
    expect(applyDevnumLink(devRoot, usbDeviceEvent('remove'), plan('remove'))).toBeUndefined();
    expect(existsSync(link)).toBe(false);
    // Something that is not a link in the way is reported, not replaced.
    mkdirSync(link, { recursive: true });
    expect(applyDevnumLink(devRoot, usbDeviceEvent('change'), plan('change'))).toMatchObject({ ok: false, error: expect.stringContaining('in the way') });
  });
});
