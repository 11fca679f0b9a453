// The read-only JSON API of `hotplugd serve`: what the page shows, and nothing it could
// change. Each handler takes the history database and the query, and returns data; every
// size a client can ask for is bounded.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { HistoryDb } from '../history/db.js';
import { carrierEvents, interfaceLinks, linkState } from '../history/link-sessions.js';
import { lastProcessed, queryEvents, resolveDevice, type DeviceRecord, type HistoryFilter } from '../history/query.js';
import { devicesWithSessions, pairSessions, plugEvents } from '../history/sessions.js';
import { listIncidents } from '../history/records.js';
import { deviceById, eventCounts, searchDevices } from '../history/browse.js';
import { parseTimeArg } from '../text/units.js';

/** A client error: answered 400 with its message. */
export class BadRequest extends Error {}

const MAX_LIMIT = 1000;
const MAX_TEXT = 200;

export function text(query: URLSearchParams, key: string): string | undefined {
  const value = query.get(key) ?? undefined;
  if (value !== undefined && value.length > MAX_TEXT) throw new BadRequest(`${key}: at most ${MAX_TEXT} characters`);
  return value === '' ? undefined : value;
}

export function list(query: URLSearchParams, key: string): string[] | undefined {
  const values = query.getAll(key).filter((v) => v !== '');
  if (values.length > 20 || values.some((v) => v.length > MAX_TEXT)) throw new BadRequest(`${key}: at most 20 values of ${MAX_TEXT} characters`);
  return values.length > 0 ? values : undefined;
}

export function limit(query: URLSearchParams, fallback: number): number {
  const value = query.get('limit');
  if (value === null) return fallback;
  if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > MAX_LIMIT) throw new BadRequest(`limit: a number from 1 to ${MAX_LIMIT}`);
  return Number(value);
}

export function time(query: URLSearchParams, key: string): number | undefined {
  const value = text(query, key);
  if (value === undefined) return undefined;
  const parsed = parseTimeArg(value);
  if (parsed === undefined) throw new BadRequest(`${key}: expected 1h, 2d, today, yesterday or ISO 8601; got ${JSON.stringify(value)}`);
  return parsed;
}

export interface ApiContext {
  db: HistoryDb;
  sysfsRoot: string;
}

const present = (ctx: ApiContext, d: DeviceRecord) => existsSync(join(ctx.sysfsRoot, d.devpath));

/** Devices, most recently seen first; `q` searches names, subsystem, vendor:product, serial, vendor and model. */
export function devices(ctx: ApiContext, query: URLSearchParams) {
  const rows = searchDevices(ctx.db, text(query, 'q'), limit(query, 200));
  return { devices: rows.map((d) => ({ ...d, present: present(ctx, d) })) };
}

/** One device: what it is, its last processed state, its link, its sessions and its newest events. */
export function device(ctx: ApiContext, id: number, query: URLSearchParams) {
  const d = deviceById(ctx.db, id);
  if (!d) return undefined;
  const events = [...queryEvents(ctx.db, { deviceIds: [id] }, { limit: limit(query, 100) })];
  return {
    device: { ...d, present: present(ctx, d) },
    last: lastProcessed(ctx.db, d.devpath, [d]) ?? null,
    link: d.subsystem === 'net' ? (linkState(ctx.db, d.devpath, d.id) ?? null) : null,
    sessions: pairSessions(plugEvents(ctx.db, d)),
    events,
  };
}

/** Recorded events with the filters of `hotplugd history` (device, subsystem, action, since, until), newest `limit`. */
export function events(ctx: ApiContext, query: URLSearchParams) {
  const filter: HistoryFilter = { subsystems: list(query, 'subsystem'), actions: list(query, 'action'), since: time(query, 'since'), until: time(query, 'until') };
  const device = text(query, 'device');
  if (device !== undefined) filter.deviceIds = resolveDevice(ctx.db, device).map((d) => d.id);
  if (filter.deviceIds?.length === 0) return { events: [] };
  return { events: [...queryEvents(ctx.db, filter, { limit: limit(query, 100) })] };
}

/** Plug-in sessions of USB devices (all devices with `all=1`), or carrier sessions with `links=1`. */
export function sessions(ctx: ApiContext, query: URLSearchParams) {
  const now = Date.now();
  if (query.get('links') === '1') return { links: interfaceLinks(carrierEvents(ctx.db, text(query, 'interface')), now).slice(0, limit(query, 100)) };
  const rows = devicesWithSessions(ctx.db, { usbOnly: query.get('all') !== '1', limit: limit(query, 100) });
  return { devices: rows.map((d) => ({ device: d, sessions: pairSessions(plugEvents(ctx.db, d)) })) };
}

export function incidents(ctx: ApiContext, query: URLSearchParams) {
  return { incidents: listIncidents(ctx.db, { limit: limit(query, 100) }) };
}

/** Events per subsystem per time bucket since `since` (default 24 h ago), for the rates chart. */
export function rates(ctx: ApiContext, query: URLSearchParams) {
  const until = time(query, 'until') ?? Date.now();
  const since = time(query, 'since') ?? until - 24 * 3600_000;
  if (since >= until) throw new BadRequest('since: must be before until');
  // About 100 buckets, at least a second each.
  const bucketMs = Math.max(1000, Math.ceil((until - since) / 100 / 1000) * 1000);
  const rows = eventCounts(ctx.db, since, until, bucketMs);
  const buckets = Math.ceil((until - since) / bucketMs);
  const series = new Map<string, number[]>();
  for (const row of rows) {
    const counts = series.get(row.subsystem) ?? new Array<number>(buckets).fill(0);
    counts[row.bucket] = row.n;
    series.set(row.subsystem, counts);
  }
  const top = [...series].sort((a, b) => b[1].reduce((x, y) => x + y, 0) - a[1].reduce((x, y) => x + y, 0)).slice(0, 12);
  return { since, until, bucketMs, times: Array.from({ length: buckets }, (_, i) => since + i * bucketMs), series: Object.fromEntries(top) };
}
