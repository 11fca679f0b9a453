// NETLINK_ROUTE datagram → link and address messages. Pure: bytes in, messages and
// rejections out; nothing here throws on bad input. A datagram holds one or more netlink
// messages (a dump packs many); each is a 16-byte header, a fixed family header and
// 4-byte-aligned attributes (rtattr). Unknown message types and attributes are skipped.

export const NLMSG_HDRLEN = 16;
export const NLMSG_NOOP = 1;
export const NLMSG_ERROR = 2;
export const NLMSG_DONE = 3;
export const RTM_NEWLINK = 16;
export const RTM_DELLINK = 17;
export const RTM_GETLINK = 18;
export const RTM_NEWADDR = 20;
export const RTM_DELADDR = 21;
export const RTM_GETADDR = 22;
const NLM_F_REQUEST = 0x1;
const NLM_F_DUMP = 0x300;

const IFINFOMSG_LEN = 16;
const IFADDRMSG_LEN = 8;
const IFLA_IFNAME = 3;
const IFLA_OPERSTATE = 16;
const IFLA_CARRIER = 33;
const IFA_ADDRESS = 1;
const IFA_LOCAL = 2;
const IFA_LABEL = 3;
const AF_INET = 2;
const AF_INET6 = 10;
const NLA_TYPE_MASK = 0x3fff;

export const IFF_UP = 0x1;
export const IFF_RUNNING = 0x40;
export const IFF_LOWER_UP = 0x10000;
export const IFF_DORMANT = 0x20000;

/** RFC 2863 operational states as the kernel numbers them (IF_OPER_*). */
export const OPERSTATES = ['unknown', 'notpresent', 'down', 'lowerlayerdown', 'testing', 'dormant', 'up'] as const;

export const ROUTE_REJECT_REASONS = ['short-header', 'bad-length', 'short-body', 'bad-attribute', 'bad-address'] as const;
export type RouteRejectReason = (typeof ROUTE_REJECT_REASONS)[number];

export interface LinkMessage {
  kind: 'link';
  deleted: boolean;
  ifindex: number;
  name: string | undefined;
  flags: number;
  /** IF_OPER_*; undefined when the message has no IFLA_OPERSTATE. */
  operstate: number | undefined;
  seq: number;
  /** nlmsg_pid: the port of the socket whose request caused it (ours for a dump's answers). */
  port: number;
}

export interface AddressMessage {
  kind: 'address';
  deleted: boolean;
  ifindex: number;
  family: 'inet' | 'inet6';
  address: string;
  prefixLength: number;
  scope: string;
  label: string | undefined;
  seq: number;
  port: number;
}

/** The end of a dump (NLMSG_DONE), or the kernel's answer to a request that failed (NLMSG_ERROR). */
export interface ControlMessage {
  kind: 'done' | 'error';
  seq: number;
  port: number;
  /** NLMSG_ERROR: the errno (0 is an acknowledgement). */
  errno?: number;
}

export type RouteMessage = LinkMessage | AddressMessage | ControlMessage;

export interface RouteRejection {
  reason: RouteRejectReason;
  detail: string;
}

export interface ParsedRouteDatagram {
  messages: RouteMessage[];
  /** At most one: after a malformed message the rest of the datagram cannot be trusted. */
  rejection: RouteRejection | undefined;
}

/** systemd-networkd's carrier rule: operstate up, or (operstate unknown) lower up and running, not dormant. */
export function hasCarrier(operstate: number | undefined, flags: number): boolean {
  if (operstate === 6) return true;
  if (operstate !== undefined && operstate !== 0) return false;
  return (flags & (IFF_LOWER_UP | IFF_RUNNING)) === (IFF_LOWER_UP | IFF_RUNNING) && (flags & IFF_DORMANT) === 0;
}

/** The scope of an address as `ip` names it. */
export function scopeName(scope: number): string {
  return { 0: 'global', 200: 'site', 253: 'link', 254: 'host', 255: 'nowhere' }[scope] ?? String(scope);
}

/** An IPv6 address in RFC 5952's form (lower case, longest run of zero groups as ::). */
export function formatIpv6(bytes: Uint8Array): string {
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i] as number) << 8) | (bytes[i + 1] as number));
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) [bestStart, bestLength] = [i, j - i];
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLength).join(':')}`;
}

function attributes(data: Buffer, start: number, end: number): Map<number, Buffer> | undefined {
  const found = new Map<number, Buffer>();
  let at = start;
  while (at + 4 <= end) {
    const length = data.readUInt16LE(at);
    const type = data.readUInt16LE(at + 2) & NLA_TYPE_MASK;
    if (length < 4 || at + length > end) return undefined;
    if (!found.has(type)) found.set(type, data.subarray(at + 4, at + length));
    at += (length + 3) & ~3;
  }
  return found;
}

function cString(value: Buffer | undefined): string | undefined {
  if (value === undefined) return undefined;
  const nul = value.indexOf(0);
  return value.subarray(0, nul < 0 ? value.length : nul).toString('latin1');
}

function parseLink(data: Buffer, at: number, end: number, type: number, seq: number, port: number): LinkMessage | RouteRejection {
  if (end - at < IFINFOMSG_LEN) return { reason: 'short-body', detail: `ifinfomsg needs ${IFINFOMSG_LEN} bytes, got ${end - at}` };
  const attrs = attributes(data, at + IFINFOMSG_LEN, end);
  if (attrs === undefined) return { reason: 'bad-attribute', detail: 'an attribute runs past its message' };
  const operstate = attrs.get(IFLA_OPERSTATE);
  return {
    kind: 'link',
    deleted: type === RTM_DELLINK,
    ifindex: data.readInt32LE(at + 4),
    name: cString(attrs.get(IFLA_IFNAME)),
    flags: data.readUInt32LE(at + 8),
    operstate: operstate && operstate.length >= 1 ? operstate[0] : undefined,
    seq,
    port,
  };
}

function parseAddress(data: Buffer, at: number, end: number, type: number, seq: number, port: number): AddressMessage | RouteRejection | undefined {
  if (end - at < IFADDRMSG_LEN) return { reason: 'short-body', detail: `ifaddrmsg needs ${IFADDRMSG_LEN} bytes, got ${end - at}` };
  const family = data[at];
  if (family !== AF_INET && family !== AF_INET6) return undefined; // other families: skipped
  const attrs = attributes(data, at + IFADDRMSG_LEN, end);
  if (attrs === undefined) return { reason: 'bad-attribute', detail: 'an attribute runs past its message' };
  // IPv4's own address is IFA_LOCAL (IFA_ADDRESS is the peer's on point-to-point links).
  const raw = family === AF_INET ? (attrs.get(IFA_LOCAL) ?? attrs.get(IFA_ADDRESS)) : attrs.get(IFA_ADDRESS);
  const size = family === AF_INET ? 4 : 16;
  if (raw === undefined || raw.length !== size) return { reason: 'bad-address', detail: `expected a ${size}-byte address` };
  const prefixLength = data[at + 1] as number;
  if (prefixLength > size * 8) return { reason: 'bad-address', detail: `prefix length ${prefixLength} is too long` };
  return {
    kind: 'address',
    deleted: type === RTM_DELADDR,
    ifindex: data.readUInt32LE(at + 4),
    family: family === AF_INET ? 'inet' : 'inet6',
    address: family === AF_INET ? [...raw].join('.') : formatIpv6(raw),
    prefixLength,
    scope: scopeName(data[at + 3] as number),
    label: cString(attrs.get(IFA_LABEL)),
    seq,
    port,
  };
}

/** Parses one NETLINK_ROUTE datagram. */
export function parseRouteDatagram(data: Buffer): ParsedRouteDatagram {
  const messages: RouteMessage[] = [];
  let at = 0;
  while (at < data.length) {
    if (data.length - at < NLMSG_HDRLEN) return { messages, rejection: { reason: 'short-header', detail: `${data.length - at} bytes left, a header needs ${NLMSG_HDRLEN}` } };
    const length = data.readUInt32LE(at);
    const type = data.readUInt16LE(at + 4);
    const seq = data.readUInt32LE(at + 8);
    const port = data.readUInt32LE(at + 12);
    if (length < NLMSG_HDRLEN || at + length > data.length) {
      return { messages, rejection: { reason: 'bad-length', detail: `message length ${length} at offset ${at} of ${data.length}` } };
    }
    const body = at + NLMSG_HDRLEN;
    const end = at + length;
    let parsed: RouteMessage | RouteRejection | undefined;
    if (type === RTM_NEWLINK || type === RTM_DELLINK) parsed = parseLink(data, body, end, type, seq, port);
    else if (type === RTM_NEWADDR || type === RTM_DELADDR) parsed = parseAddress(data, body, end, type, seq, port);
    else if (type === NLMSG_DONE) parsed = { kind: 'done', seq, port };
    else if (type === NLMSG_ERROR) parsed = { kind: 'error', seq, port, errno: end - body >= 4 ? -data.readInt32LE(body) : undefined };
    if (parsed !== undefined && 'reason' in parsed) return { messages, rejection: parsed };
    if (parsed !== undefined) messages.push(parsed);
    at += (length + 3) & ~3;
  }
  return { messages, rejection: undefined };
}

/** A dump request (RTM_GETLINK or RTM_GETADDR, every family) with sequence number `seq`. */
export function dumpRequest(type: typeof RTM_GETLINK | typeof RTM_GETADDR, seq: number): Buffer {
  const bodyLength = type === RTM_GETLINK ? IFINFOMSG_LEN : IFADDRMSG_LEN;
  const request = Buffer.alloc(NLMSG_HDRLEN + bodyLength);
  request.writeUInt32LE(request.length, 0);
  request.writeUInt16LE(type, 4);
  request.writeUInt16LE(NLM_F_REQUEST | NLM_F_DUMP, 6);
  request.writeUInt32LE(seq, 8);
  return request;
}
