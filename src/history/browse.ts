// What the web page browses (server/api.ts) that `hotplugd history` does not: a search of
// the devices, one device by id, events counted per subsystem per time bucket, and the
// size of the history.
import type { HistoryDb } from './db.js';
import type { DeviceRecord } from './query.js';

/** Devices matching `q` in any name, subsystem, vendor:product, serial, vendor or model (all when null), most recently seen first, with up to 8 of their names. */
export function searchDevices(db: HistoryDb, q: string | undefined, limit: number): (DeviceRecord & { names: string[] })[] {
  const like = `%${(q ?? '').replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
  const matches = (column: string) => `${column} LIKE @like ESCAPE '\\'`;
  const rows = db
    .prepare(
      `SELECT * FROM devices d WHERE @q IS NULL OR ${['d.key', 'd.subsystem', 'd.devpath', "coalesce(d.vendor_id || ':' || d.product_id, '')", "coalesce(d.serial, '')", "coalesce(d.vendor, '')", "coalesce(d.model, '')"].map(matches).join(' OR ')}
         OR d.id IN (SELECT device_id FROM device_names WHERE ${matches('name')})
       ORDER BY d.last_seen DESC, d.id DESC LIMIT @limit`,
    )
    .all({ q: q ?? null, like, limit }) as DeviceRecord[];
  const names = db.prepare('SELECT name FROM device_names WHERE device_id = ? ORDER BY name LIMIT 8');
  return rows.map((d) => ({ ...d, names: (names.all(d.id) as { name: string }[]).map((n) => n.name) }));
}

/** One device by its id. */
export function deviceById(db: HistoryDb, id: number): DeviceRecord | undefined {
  return db.prepare('SELECT * FROM devices WHERE id = ?').get(id) as DeviceRecord | undefined;
}

/** Events per subsystem per bucket of `bucketMs` in [since, until). */
export function eventCounts(db: HistoryDb, since: number, until: number, bucketMs: number): { subsystem: string; bucket: number; n: number }[] {
  return db
    .prepare('SELECT subsystem, CAST((received_at - ?) / ? AS INTEGER) AS bucket, count(*) AS n FROM events WHERE received_at >= ? AND received_at < ? GROUP BY subsystem, bucket')
    .all(since, bucketMs, since, until) as { subsystem: string; bucket: number; n: number }[];
}

/** How many events the history holds and the newest id. */
export function historySize(db: HistoryDb): { events: number; newest: number } {
  return db.prepare('SELECT count(*) AS events, coalesce(max(id), 0) AS newest FROM events').get() as { events: number; newest: number };
}
