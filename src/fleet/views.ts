// What `hotplugd info` and `hotplugd sessions` show of one board in a collected fleet database,
// in the shapes they show for a board's own history: its devices, their plug-in sessions, a
// device's last processed state, its link and its timeline. The fleet database holds the
// boards' records (not their devices tables), so all of it is read from those records.
import { historyName } from '../uevent/device-names.js';
import { isLinkEvent } from '../uevent/event.js';
import { parseDeviceKey, usbDevicePath } from '../history/devices.js';
import type { FleetDevice, FleetStore } from './records.js';
import { foldLinkState, type LinkState } from '../history/link-sessions.js';
import type { DeviceRecord, HistoryRecord } from '../history/query.js';
import { pairSessions, type Session } from '../history/sessions.js';
import { withResult, type ProcessedRecord } from '../history/records.js';

/** The properties after the rules, as a board's subscribers saw the event. */
function processed(record: HistoryRecord): ProcessedRecord {
  const { device: _d, result, actions: _a, rules, ...event } = record;
  return withResult(event, result, rules);
}

/** A device record from a fleet's identity key and the newest of its events. */
function deviceRecord(device: FleetDevice, newest: HistoryRecord | undefined): DeviceRecord {
  const { subsystem, usb, devpath } = parseDeviceKey(device.key);
  const p = newest ? processed(newest).properties : {};
  return {
    id: 0,
    key: device.key,
    subsystem,
    devpath: usb ? (newest ? (usbDevicePath(newest.devpath) ?? newest.devpath) : '') : (devpath ?? ''),
    vendor_id: usb?.vendorId ?? null,
    product_id: usb?.productId ?? null,
    serial: usb?.serial ?? null,
    vendor: usb ? (p.ID_VENDOR_FROM_DATABASE ?? p.ID_VENDOR ?? null) : null,
    model: usb ? (p.ID_MODEL_FROM_DATABASE ?? p.ID_MODEL ?? null) : null,
    first_seen: device.first_seen,
    last_seen: device.last_seen,
  };
}

async function newestOf(store: FleetStore, board: string, filter: { devices?: string[]; devpaths?: string[] }): Promise<HistoryRecord | undefined> {
  for await (const record of store.events({ board, ...filter }, 1)) return record;
  return undefined;
}

/** The devices of a board that NAME means (as `hotplugd history --device` reads it). */
export async function resolveBoardDevice(store: FleetStore, board: string, text: string): Promise<DeviceRecord[]> {
  const name = historyName(text);
  const all = await store.devices(board);
  const found = new Map<string, FleetDevice>();
  for (const d of all) {
    const usb = parseDeviceKey(d.key).usb;
    const ids = `${usb?.vendorId}:${usb?.productId}`;
    if (d.key === name || (usb && (ids === name.toLowerCase() || usb.serial === name || `${ids}:${usb.serial}` === name))) found.set(d.key, d);
  }
  // A devpath, a node or a kernel name: the device of the newest event there.
  const byKey = new Map(all.map((d) => [d.key, d]));
  // (An event below a USB device carries that device's key.)
  for (const devpath of await store.devpathsNamed(board, name)) {
    const key = (await newestOf(store, board, { devpaths: [devpath] }))?.device;
    const device = key ? byKey.get(key) : undefined;
    if (device) found.set(device.key, device);
  }
  return Promise.all([...found.values()].map(async (d) => deviceRecord(d, await newestOf(store, board, { devices: [d.key] }))));
}

/** A board's devices with their plug-in sessions (USB ones only, unless `usbOnly` is false). */
export async function boardSessions(store: FleetStore, board: string, devices: DeviceRecord[] | { usbOnly: boolean }): Promise<{ device: DeviceRecord; sessions: Session[] }[]> {
  const list = Array.isArray(devices)
    ? devices
    : await Promise.all((await store.devices(board)).filter((d) => !devices.usbOnly || d.key.startsWith('usb:')).map(async (d) => deviceRecord(d, await newestOf(store, board, { devices: [d.key] }))));
  const result: { device: DeviceRecord; sessions: Session[] }[] = [];
  for (const device of list) {
    const usb = device.key.startsWith('usb:');
    const plugs = [];
    for await (const r of store.events({ board, devices: [device.key], actions: ['add', 'remove'] })) {
      if (r.source === 'debounce' || (usb ? r.devtype !== 'usb_device' : r.devpath !== device.devpath)) continue;
      plugs.push({ id: r.id, action: r.action, devpath: r.devpath, source: r.source, at: Date.parse(r.received_at) });
    }
    if (plugs.length > 0) result.push({ device, sessions: pairSessions(plugs) });
  }
  return result;
}

export interface BoardDeviceInfo {
  devpath: string;
  device: DeviceRecord | null;
  last: ProcessedRecord | null;
  link: LinkState | null;
  timeline: HistoryRecord[];
}

/** What `info --board` shows of NAME (a devpath, /dev node or kernel name); undefined when the board never had it. */
export async function boardDeviceInfo(store: FleetStore, board: string, name: string, limit: number): Promise<BoardDeviceInfo | undefined> {
  const [devpath] = await store.devpathsNamed(board, historyName(name));
  if (devpath === undefined) return undefined;
  let last: HistoryRecord | undefined;
  let newest: HistoryRecord | undefined;
  const linkEvents = [];
  for await (const r of store.events({ board, devpaths: [devpath] })) {
    newest = r;
    if (r.source === 'debounce') continue;
    if (isLinkEvent(r) || r.action === 'add') linkEvents.push({ action: r.action, at: Date.parse(r.received_at), properties: r.properties });
    if (r.action !== 'remove' && !isLinkEvent(r)) last = r;
  }
  const key = last?.device ?? newest?.device ?? undefined;
  const [known] = key ? await store.devices(board, key) : [];
  const device = known ? deviceRecord(known, await newestOf(store, board, { devices: [known.key] })) : null;
  const timeline = [];
  for await (const r of store.events({ board, ...(known ? { devices: [known.key] } : { devpaths: [devpath] }) }, limit)) timeline.push(r);
  return { devpath, device, last: last ? processed(last) : null, link: foldLinkState(linkEvents) ?? null, timeline };
}
