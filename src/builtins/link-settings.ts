// The [Link] settings net_setup_link applies besides the name, as udevd applies them:
// the MAC address (MACAddressPolicy=persistent|random, or MACAddress=) and the alternative
// names (AlternativeNamesPolicy=, AlternativeName=). Pure: the builtin only plans them; the
// daemon's executor sets them, and a dry run shows them without setting anything.
import { randomBytes } from 'node:crypto';
import { siphash24 } from './siphash24.js';

// addr_assign_type (include/uapi/linux/netdevice.h)
const NET_ADDR_PERM = 0;
const NET_ADDR_RANDOM = 1;
// systemd's fixed key for persistent MACs (netif-util.c's HASH_KEY), so the MAC an interface
// gets under hotplugd is the one it got under udevd.
const HASH_KEY = Uint8Array.from([0xd3, 0x1e, 0x48, 0xfa, 0x90, 0xfe, 0x4b, 0x4c, 0x9d, 0xaf, 0xd5, 0xd7, 0xa1, 0xb1, 0x2e, 0x8a]);
const ALTNAME_PROPERTIES: Record<string, string> = { database: 'ID_NET_NAME_FROM_DATABASE', onboard: 'ID_NET_NAME_ONBOARD', slot: 'ID_NET_NAME_SLOT', path: 'ID_NET_NAME_PATH', mac: 'ID_NET_NAME_MAC' };
const ALTIFNAMSIZ = 128;

/** What net_setup_link asks to be set on an interface (the executor leaves out altnames it already has). */
export interface InterfaceSettings {
  mac: string | null;
  altnames: string[];
}

/** A MAC address written xx:xx:xx:xx:xx:xx, lower case; undefined when `text` is not one. */
export function parseMac(text: string): string | undefined {
  const match = /^([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})$/i.exec(text.trim());
  return match ? match.slice(1).join(':').toLowerCase() : undefined;
}

function formatMac(bytes: Uint8Array): string {
  // As the kernel's eth_random_addr: a unicast (multicast bit clear), locally administered address.
  const octets = [...bytes.subarray(0, 6)];
  octets[0] = ((octets[0] as number) & 0xfe) | 0x02;
  return octets.map((b) => b.toString(16).padStart(2, '0')).join(':');
}

/** The machine ID (/etc/machine-id's 32 hex digits) as 16 bytes; undefined when it is not one. */
export function machineIdBytes(text: string | undefined): Uint8Array | undefined {
  const id = text?.trim() ?? '';
  return /^[0-9a-f]{32}$/i.test(id) ? Uint8Array.from(Buffer.from(id, 'hex')) : undefined;
}

/**
 * The interface's stable name for hashing: ID_NET_NAME_ONBOARD, _SLOT, _PATH or _MAC, else
 * its current name (systemd's naming schemes since v241 do the same for virtual interfaces).
 */
export function stableName(properties: Readonly<Record<string, string>>, current: string): string {
  for (const key of ['ID_NET_NAME_ONBOARD', 'ID_NET_NAME_SLOT', 'ID_NET_NAME_PATH', 'ID_NET_NAME_MAC']) {
    if (properties[key]) return properties[key];
  }
  return current;
}

/** The persistent MAC of `name` on the machine whose ID is `machineId`: systemd's derivation. */
export function persistentMac(machineId: Uint8Array, name: string): string {
  const data = Buffer.concat([machineId, Buffer.from(name, 'utf8')]);
  const hash = siphash24(data, HASH_KEY);
  const bytes = new Uint8Array(8);
  new DataView(bytes.buffer).setBigUint64(0, hash, true);
  return formatMac(bytes);
}

export interface MacInput {
  policy: string | undefined;
  fixed: string | undefined;
  addrAssignType: number;
  stableName: string;
  machineId: Uint8Array | undefined;
}

/**
 * The MAC address to set, or null: a policy acts only on an address the kernel made (permanent
 * or random), and only when it is not already of the kind wanted; without a policy, MACAddress=.
 */
export function plannedMac(input: MacInput): string | null {
  if (input.policy !== 'persistent' && input.policy !== 'random') return input.fixed ?? null;
  if (input.addrAssignType !== NET_ADDR_PERM && input.addrAssignType !== NET_ADDR_RANDOM) return null;
  const wantRandom = input.policy === 'random';
  if (wantRandom === (input.addrAssignType === NET_ADDR_RANDOM)) return null;
  if (wantRandom) return formatMac(randomBytes(6));
  return input.machineId === undefined ? null : persistentMac(input.machineId, input.stableName);
}

/** A name the kernel takes as an alternative name: not empty, under 128 bytes, no '/', ':' or space, not a number. */
export function validAltname(name: string): boolean {
  return name.length > 0 && Buffer.byteLength(name) < ALTIFNAMSIZ && name !== '.' && name !== '..' && !/[/:\s]/.test(name) && !/^\d+$/.test(name);
}

/**
 * AlternativeName= then the names AlternativeNamesPolicy= picks, without the interface's
 * current and new names, invalid ones and repeats, sorted (as udevd sends them).
 */
export function plannedAltnames(fixed: readonly string[], policy: readonly string[], properties: Readonly<Record<string, string>>, current: string, next: string | undefined): string[] {
  const names = [...fixed];
  for (const p of policy) {
    const key = ALTNAME_PROPERTIES[p];
    const value = key === undefined ? undefined : properties[key];
    if (value) names.push(value);
  }
  const unique = new Set(names.filter((n) => validAltname(n) && n !== current && n !== next));
  return [...unique].sort();
}
