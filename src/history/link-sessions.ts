// Carrier sessions of network interfaces: each link-up paired with the link-down that ended
// it, per interface name ("when did the uplink drop last night, and for how long?"), and
// how often the link flapped. As with plug-in sessions, an end the history does not know is
// reported as unknown: the daemon was not running, or the history began while the link was up.
import type { HistoryDb } from './db.js';

export interface CarrierEvent {
  id: number;
  action: 'link-up' | 'link-down';
  iface: string;
  devpath: string;
  source: string;
  at: number;
}

export interface CarrierSession {
  /** When the carrier came; null when the history does not know (the link was up when it began). */
  upAt: number | null;
  downAt: number | null;
  /** True when a later link-up shows the carrier went without a recorded link-down. */
  endMissed: boolean;
  /** Found up at the daemon's start (the start-up snapshot): up at or before `upAt`. */
  presentAtStart: boolean;
}

export interface InterfaceLinks {
  iface: string;
  devpath: string;
  firstAt: number;
  lastAt: number;
  sessions: CarrierSession[];
  /** Carrier losses (link-down) per hour, from the first recorded event to `now`. */
  flapsPerHour: number;
  /** Time with a carrier that the history knows of. */
  upMs: number;
}

/** Pairs link-up with link-down events of one interface, oldest first, into sessions. */
export function pairCarrier(events: readonly CarrierEvent[]): CarrierSession[] {
  const sessions: CarrierSession[] = [];
  let open: CarrierSession | undefined;
  for (const event of events) {
    if (event.action === 'link-up') {
      // The start-up snapshot of a link still up continues its session across the restart.
      if (open && event.source === 'coldplug') continue;
      if (open) open.endMissed = true;
      open = { upAt: event.at, downAt: null, endMissed: false, presentAtStart: event.source === 'coldplug' };
      sessions.push(open);
    } else if (open) {
      open.downAt = event.at;
      open = undefined;
    } else if (event.source !== 'coldplug' && sessions.length === 0) {
      // Down with no up recorded: the link was up when the history began.
      sessions.push({ upAt: null, downAt: event.at, endMissed: false, presentAtStart: false });
    }
  }
  return sessions;
}

/** The link-up and link-down events, oldest first, of one interface or of all (debounced turns repeat one: left out). */
export function carrierEvents(db: HistoryDb, iface?: string): CarrierEvent[] {
  return db
    .prepare(
      `SELECT id, action, json_extract(properties, '$.INTERFACE') AS iface, devpath, source, received_at AS at FROM events
       WHERE action IN ('link-up', 'link-down') AND source != 'debounce' ${iface === undefined ? '' : "AND json_extract(properties, '$.INTERFACE') = ?"} ORDER BY id`,
    )
    .all(...(iface === undefined ? [] : [iface])) as CarrierEvent[];
}

/** Per interface: its sessions, flaps per hour and time up, most recently active first. */
export function interfaceLinks(events: readonly CarrierEvent[], now: number): InterfaceLinks[] {
  const byName = new Map<string, CarrierEvent[]>();
  for (const event of events) {
    const list = byName.get(event.iface);
    if (list) list.push(event);
    else byName.set(event.iface, [event]);
  }
  const result: InterfaceLinks[] = [];
  for (const [iface, list] of byName) {
    const sessions = pairCarrier(list);
    const first = list[0] as CarrierEvent;
    const last = list[list.length - 1] as CarrierEvent;
    const downs = list.filter((e) => e.action === 'link-down' && e.source !== 'coldplug').length;
    const hours = Math.max(now - first.at, 1) / 3_600_000;
    const upMs = sessions.reduce((sum, s) => sum + (s.upAt === null ? 0 : s.downAt !== null ? s.downAt - s.upAt : s.endMissed ? 0 : now - s.upAt), 0);
    result.push({ iface, devpath: last.devpath, firstAt: first.at, lastAt: last.at, sessions, flapsPerHour: downs / hours, upMs });
  }
  return result.sort((a, b) => b.lastAt - a.lastAt);
}

export interface LinkState {
  /** The last link-up or link-down: CARRIER, OPERSTATE, ADMIN as it told them, and when. */
  carrier: boolean;
  operstate: string;
  admin: string;
  since: number;
  /** Addresses added and not removed since (`198.51.100.7/24`), oldest first. */
  addresses: string[];
}

/** What the history knows of an interface's link now; undefined when it holds no link event for it. */
export function linkState(db: HistoryDb, devpath: string, deviceId?: number): LinkState | undefined {
  // With the device's id, its events come from the (device_id, id) index, not a scan.
  const rows = db
    .prepare(
      `SELECT action, received_at AS at, properties FROM events
       WHERE ${deviceId === undefined ? '' : 'device_id = ? AND '}devpath = ? AND action IN ('link-up', 'link-down', 'address-add', 'address-remove', 'add') AND source != 'debounce' ORDER BY id`,
    )
    .all(...(deviceId === undefined ? [devpath] : [deviceId, devpath])) as { action: string; at: number; properties: string }[];
  return foldLinkState(rows.map((r) => ({ action: r.action, at: r.at, properties: JSON.parse(r.properties) as Record<string, string> })));
}

/** The link state an interface's events tell, oldest first (its link events and adds; none from debounce turns). */
export function foldLinkState(events: readonly { action: string; at: number; properties: Record<string, string> }[]): LinkState | undefined {
  let state: LinkState | undefined;
  const addresses = new Set<string>();
  for (const { action, at, properties: p } of events) {
    if (action === 'add') {
      // A new interface under this devpath: what came before was another one's.
      state = undefined;
      addresses.clear();
    } else if (action === 'link-up' || action === 'link-down') {
      state = { carrier: action === 'link-up', operstate: p.OPERSTATE ?? '', admin: p.ADMIN ?? '', since: at, addresses: [] };
    } else {
      const address = `${p.IP_ADDRESS}/${p.PREFIX_LENGTH}`;
      if (action === 'address-add') addresses.add(address);
      else addresses.delete(address);
    }
  }
  if (state === undefined && addresses.size === 0) return undefined;
  return { ...(state ?? { carrier: false, operstate: 'unknown', admin: 'unknown', since: 0 }), addresses: [...addresses] };
}
