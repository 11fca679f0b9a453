// The device node: created when devtmpfs did not (major/minor from the event), then
// owner, group and mode from the plan. Only a real device node under the dev root is touched.
// A node is made only while the device is still there, and never for an `unbind`: the
// kernel removes a device's devtmpfs node before it unbinds its driver (a USB device's
// `unbind` comes after), and making it again then would leave a node for a device that is gone.
import { chmodSync, chownSync, lstatSync, readlinkSync, unlinkSync, type Stats } from 'node:fs';
import { dirname, relative } from 'node:path';
import { HotplugError } from '../errors.js';
import { makeNode } from '../os/system-calls.js';
import type { Plan } from '../rules/plan.js';
import type { Uevent } from '../uevent/event.js';
import { ensureParentDirectories, insideRoot, replaceSymlink } from './paths.js';
import { attempt, type ActionResult } from './results.js';

const DEFAULT_NODE_MODE = 0o600;

/**
 * Creates the node if missing (not on `unbind`, and only while `present` says the device is
 * there) and applies owner/group/mode; one result, or none when there is nothing to do (a
 * node that has them already: a disk's `change` events are not an action each in the history).
 */
export function applyDeviceNode(devRoot: string, event: Uevent, plan: Plan, present: () => boolean): ActionResult | undefined {
  if (plan.devnode === null || event.action === 'remove') return undefined;
  if (event.major === undefined || event.minor === undefined) return undefined;
  const wantsAttributes = plan.owner !== null || plan.group !== null || plan.mode !== null;
  let path: string;
  let stat: Stats | undefined;
  try {
    path = insideRoot(devRoot, plan.devnode);
    stat = lstatSync(path, { throwIfNoEntry: false });
  } catch (error) {
    return attempt('node', plan.devnode, null, () => {
      throw error;
    });
  }
  if (stat === undefined && (event.action === 'unbind' || !present())) return undefined;
  if (stat !== undefined && (!wantsAttributes || hasAttributes(stat, plan))) return undefined;
  // No single rule: owner, group and mode may each come from a different one.
  return attempt('node', plan.devnode, null, () => {
    if (stat === undefined) {
      ensureParentDirectories(devRoot, path);
      const isBlock = event.subsystem === 'block';
      makeNode(path, isBlock, plan.mode ?? DEFAULT_NODE_MODE, event.major as number, event.minor as number);
      stat = lstatSync(path);
    }
    // chown/chmod follow links: a planted link must never redirect them.
    if (!stat.isCharacterDevice() && !stat.isBlockDevice()) throw new HotplugError('ENOTNODE', `${path} is not a device node`);
    if (plan.owner !== null || plan.group !== null) chownSync(path, plan.owner?.id ?? -1, plan.group?.id ?? -1);
    if (plan.mode !== null) chmodSync(path, plan.mode);
  });
}

// Owner, group and mode as the plan wants them, on a node (a link or a file is an error to report).
function hasAttributes(stat: Stats, plan: Plan): boolean {
  return (stat.isCharacterDevice() || stat.isBlockDevice()) && (plan.owner === null || plan.owner.id === stat.uid) &&
    (plan.group === null || plan.group.id === stat.gid) && (plan.mode === null || plan.mode === (stat.mode & 0o7777));
}

/** `<dev root>/char/MAJ:MIN` or `<dev root>/block/MAJ:MIN`, as udevd names a node by its number. */
function devnumLink(devRoot: string, event: Uevent): string | undefined {
  if (event.major === undefined || event.minor === undefined) return undefined;
  return `${devRoot}/${event.subsystem === 'block' ? 'block' : 'char'}/${event.major}:${event.minor}`;
}

/**
 * udevd's link from the node's number to the node (/dev/char/189:1 → ../bus/usb/001/002),
 * which libudev's lookups by number use: made while the node is there, removed with the
 * device. A result only when it fails (it is made for every node, as udevd does).
 */
export function applyDevnumLink(devRoot: string, event: Uevent, plan: Plan): ActionResult | undefined {
  const link = devnumLink(devRoot, event);
  if (link === undefined) return undefined;
  const result = attempt('symlink', link, null, () => {
    const path = insideRoot(devRoot, link);
    const current = lstatSync(path, { throwIfNoEntry: false });
    if (event.action === 'remove') {
      // Only our own kind of entry goes: a link (whatever it points to now is this number's node).
      if (current?.isSymbolicLink()) unlinkSync(path);
      return;
    }
    if (plan.devnode === null) return;
    const node = lstatSync(insideRoot(devRoot, plan.devnode), { throwIfNoEntry: false });
    if (node === undefined || !(node.isCharacterDevice() || node.isBlockDevice())) return;
    const target = relative(dirname(path), plan.devnode);
    if (current?.isSymbolicLink() && readlinkSync(path) === target) return;
    if (current !== undefined && !current.isSymbolicLink()) throw new HotplugError('EEXIST', `${path} is in the way (not a link)`);
    replaceSymlink(devRoot, path, target);
  });
  return result.ok ? undefined : result;
}
