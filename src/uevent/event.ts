// The typed uevent every part of hotplugd passes around: the well-known keys as
// fields, plus the full property map in the kernel's order.

/** The actions the kernel sends today; any other action is kept as a plain string. */
export const KERNEL_ACTIONS = ['add', 'remove', 'change', 'move', 'online', 'offline', 'bind', 'unbind'] as const;

/**
 * Where an event came from: the kernel's uevent socket, the start-up scan, a rescan after
 * lost events, the kernel's route socket (link and address changes), or a debounced rule's
 * turn once the state it waited on held (see daemon/debounce.ts).
 */
export const EVENT_SOURCES = ['kernel', 'coldplug', 'resync', 'rtnetlink', 'debounce'] as const;
export type EventSource = (typeof EVENT_SOURCES)[number];

/** The actions of network link events (from NETLINK_ROUTE, not uevents). */
export const LINK_ACTIONS = ['link-up', 'link-down', 'address-add', 'address-remove'] as const;
export type LinkAction = (typeof LINK_ACTIONS)[number];

/** True for a link or address event: it is about an interface's state, not a device's presence. */
export function isLinkEvent(event: { action: string }): boolean {
  return (LINK_ACTIONS as readonly string[]).includes(event.action);
}

/** A property map with no prototype, so hostile keys such as `__proto__` stay plain data. */
export type Properties = Record<string, string>;

export interface Uevent {
  action: string;
  devpath: string;
  subsystem: string;
  devtype?: string;
  devname?: string;
  driver?: string;
  major?: number;
  minor?: number;
  seqnum?: number;
  devpathOld?: string;
  properties: Properties;
  /** Milliseconds since the Unix epoch at which hotplugd received or synthesised the event. */
  receivedAt: number;
  source: EventSource;
  /** A debounced turn (source `debounce`): only rules with this `debounce` act on it. */
  debounceMs?: number;
}

// Instances inherit from a prototype-less object: no inherited keys, `__proto__` is plain
// data, and unlike Object.create(null) V8 keeps them in fast mode with shared shapes.
function PropertyMap(): void {}
PropertyMap.prototype = Object.create(null) as object;

export function createProperties(): Properties {
  return new (PropertyMap as unknown as new () => Properties)();
}

const DECIMAL = /^[0-9]{1,15}$/;

/** A decimal property as a number, undefined when absent; null when present but not a number. */
export function parseDecimal(value: string | undefined): number | undefined | null {
  if (value === undefined) return undefined;
  return DECIMAL.test(value) ? Number(value) : null;
}

/** Builds a Uevent from a complete property map (ACTION, DEVPATH and SUBSYSTEM already checked). */
export function eventFromProperties(properties: Properties, receivedAt: number, source: EventSource): Uevent {
  const event: Uevent = {
    action: properties.ACTION as string,
    devpath: properties.DEVPATH as string,
    subsystem: properties.SUBSYSTEM as string,
    properties,
    receivedAt,
    source,
  };
  if (properties.DEVTYPE !== undefined) event.devtype = properties.DEVTYPE;
  if (properties.DEVNAME !== undefined) event.devname = properties.DEVNAME;
  if (properties.DRIVER !== undefined) event.driver = properties.DRIVER;
  if (properties.DEVPATH_OLD !== undefined) event.devpathOld = properties.DEVPATH_OLD;
  const major = parseDecimal(properties.MAJOR);
  const minor = parseDecimal(properties.MINOR);
  const seqnum = parseDecimal(properties.SEQNUM);
  if (typeof major === 'number') event.major = major;
  if (typeof minor === 'number') event.minor = minor;
  if (typeof seqnum === 'number') event.seqnum = seqnum;
  return event;
}

/**
 * A devpath we are willing to turn into a sysfs path: absolute, no empty, `.` or `..`
 * segments, no NUL. Devpaths arrive from the network-like kernel socket and from files.
 */
export function isSafeDevpath(devpath: string): boolean {
  return SAFE_DEVPATH.test(devpath);
}

// One or more "/segment" parts; a segment is non-empty, not "." or "..", and holds no NUL.
const SAFE_DEVPATH = /^(?:\/(?!\.\.?(?:\/|$))[^/\0]+)+$/;
