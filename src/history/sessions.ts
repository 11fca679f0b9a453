// Plug-in sessions of a physical device: each plug (add) paired with its unplug (remove),
// with the port it was in. The history may miss either end (the daemon was not running, or
// the history began while the device was plugged): such ends are reported as unknown.
import type { HistoryDb } from './db.js';
import type { DeviceRecord } from './query.js';
import { usbPort } from './devices.js';

export interface PlugEvent {
  id: number;
  action: string;
  devpath: string;
  source: string;
  at: number;
}

export interface Session {
  /** `1-1.2` for USB; the devpath's last part otherwise. */
  port: string;
  /** When it was plugged; null when the history does not know (it began later). */
  pluggedAt: number | null;
  unpluggedAt: number | null;
  /** True when a later plug or the daemon's start shows it was unplugged without a recorded remove. */
  endMissed: boolean;
  /** Found present at the daemon's start (coldplug): plugged at or before `pluggedAt`. */
  presentAtStart: boolean;
}

/** Pairs add and remove events, oldest first, into sessions. */
export function pairSessions(events: readonly PlugEvent[]): Session[] {
  const sessions: Session[] = [];
  let open: Session | undefined;
  for (const event of events) {
    const port = usbPort(event.devpath);
    if (event.action === 'add') {
      // A coldplug add of a device still in its port continues the session across the restart.
      if (open && event.source === 'coldplug' && open.port === port) continue;
      if (open) open.endMissed = true;
      open = { port, pluggedAt: event.at, unpluggedAt: null, endMissed: false, presentAtStart: event.source === 'coldplug' };
      sessions.push(open);
    } else if (event.action === 'remove') {
      if (open && open.port === port) {
        open.unpluggedAt = event.at;
      } else {
        if (open) open.endMissed = true;
        sessions.push({ port, pluggedAt: null, unpluggedAt: event.at, endMissed: false, presentAtStart: false });
      }
      open = undefined;
    }
  }
  return sessions;
}

/** The plug and unplug events of a device: its usb_device events for USB, else its own. */
export function plugEvents(db: HistoryDb, device: DeviceRecord): PlugEvent[] {
  const usb = device.key.startsWith('usb:');
  return db
    .prepare(
      `SELECT id, action, devpath, source, received_at AS at FROM events
       WHERE device_id = ? AND action IN ('add', 'remove') AND source != 'debounce' ${usb ? "AND devtype = 'usb_device'" : 'AND devpath = ?'} ORDER BY id`,
    )
    .all(...(usb ? [device.id] : [device.id, device.devpath])) as PlugEvent[];
}

/** Devices with at least one plug or unplug, most recently seen first. */
export function devicesWithSessions(db: HistoryDb, options: { usbOnly: boolean; limit?: number }): DeviceRecord[] {
  return db
    .prepare(
      `SELECT * FROM devices d WHERE ${options.usbOnly ? "key LIKE 'usb:%' AND" : ''}
       EXISTS (SELECT 1 FROM events e WHERE e.device_id = d.id AND e.action IN ('add', 'remove')) ORDER BY last_seen DESC LIMIT ?`,
    )
    .all(options.limit ?? -1) as DeviceRecord[];
}

/** `3 min 5 s`, `2 h 4 min`, `5 d 3 h`: a duration as people read it. */
export function humanDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min${s % 60 ? ` ${s % 60} s` : ''}`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h} h${m % 60 ? ` ${m % 60} min` : ''}`;
  return `${Math.floor(h / 24)} d${h % 24 ? ` ${h % 24} h` : ''}`;
}
