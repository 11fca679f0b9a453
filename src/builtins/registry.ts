// The builtins udev rules can name in IMPORT{builtin} and RUN{builtin}, one file each.
// Rules naming any other builtin are refused at load time.
import { blkid } from './blkid.js';
import { hwdb } from './hwdb.js';
import { inputId } from './input_id.js';
import { kmod } from './kmod.js';
import { netId } from './net_id.js';
import { netDriver, netSetupLink } from './net_setup_link.js';
import { pathId } from './path_id.js';
import type { Builtin } from '../rules/builtin.js';
import { unsupported } from './unsupported.js';
import { usbId } from './usb_id.js';

const BUILTINS: ReadonlyMap<string, Builtin> = new Map(
  [
    usbId,
    pathId,
    inputId,
    kmod,
    hwdb,
    netId,
    blkid,
    netSetupLink,
    netDriver,
    // udev builtins that need machinery hotplugd does not have; they fail, visibly, in traces.
    unsupported('btrfs', 'asks the btrfs kernel driver whether a multi-device file system is complete'),
    unsupported('keyboard', 'remaps keys with EVIOCSKEYCODE from hwdb entries'),
    unsupported('uaccess', "grants the active seat's user access through ACLs (needs systemd-logind)"),
    unsupported('factory_reset', 'reports a pending factory reset'),
    unsupported('dissect_image', 'inspects disk images'),
  ].map((b) => [b.name, b]),
);

export function isBuiltin(name: string): boolean {
  return BUILTINS.has(name);
}

export function builtin(name: string): Builtin | undefined {
  return BUILTINS.get(name);
}

export function builtinNames(): string[] {
  return [...BUILTINS.keys()];
}
