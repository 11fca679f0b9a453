// The device node: created when devtmpfs did not (major/minor from the event), then
// owner, group and mode from the plan. Only a real device node under the dev root is touched.
import { chmodSync, chownSync, lstatSync } from 'node:fs';
import { HotplugError } from '../errors.js';
import { makeNode } from '../os/system-calls.js';
import type { Plan } from '../rules/plan.js';
import type { Uevent } from '../uevent/event.js';
import { ensureParentDirectories, insideRoot } from './paths.js';
import { attempt, type ActionResult } from './results.js';


const DEFAULT_NODE_MODE = 0o600;

/** Creates the node if missing and applies owner/group/mode; one result, or none when there is nothing to do. */
export function applyDeviceNode(devRoot: string, event: Uevent, plan: Plan): ActionResult | undefined {
  if (plan.devnode === null || event.action === 'remove') return undefined;
  if (event.major === undefined || event.minor === undefined) return undefined;
  const wantsAttributes = plan.owner !== null || plan.group !== null || plan.mode !== null;
  // No single rule: owner, group and mode may each come from a different one.
  return attempt('node', plan.devnode, null, () => {
    const path = insideRoot(devRoot, plan.devnode as string);
    let stat = lstatSync(path, { throwIfNoEntry: false });
    if (stat === undefined) {
      ensureParentDirectories(devRoot, path);
      const isBlock = event.subsystem === 'block';
      makeNode(path, isBlock, plan.mode ?? DEFAULT_NODE_MODE, event.major as number, event.minor as number);
      stat = lstatSync(path);
    } else if (!wantsAttributes) {
      return;
    }
    // chown/chmod follow links: a planted link must never redirect them.
    if (!stat.isCharacterDevice() && !stat.isBlockDevice()) throw new HotplugError('ENOTNODE', `${path} is not a device node`);
    if (plan.owner !== null || plan.group !== null) chownSync(path, plan.owner?.id ?? -1, plan.group?.id ?? -1);
    if (plan.mode !== null) chmodSync(path, plan.mode);
  });
}
