// Times and sizes as people type them in history options: `1h`, `2d` (ago), `yesterday`,
// ISO 8601; `200M`, `1G`.

const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** A span such as `90d`, `12h`, `30m`, `2w`, `45s`; undefined when not one. */
export function parseSpanMs(text: string): number | undefined {
  const match = /^(\d+(?:\.\d+)?)\s*([smhdw])$/.exec(text.trim());
  if (!match) return undefined;
  const ms = Number(match[1]) * UNIT_MS[match[2]!]!;
  return ms > 0 ? Math.round(ms) : undefined;
}

function startOfDay(time: number, daysBack: number): number {
  const date = new Date(time);
  date.setHours(0, 0, 0, 0);
  date.setDate(date.getDate() - daysBack);
  return date.getTime();
}

/**
 * A point in time (epoch ms): a span ago (`1h`, `2d`), `now`, `today`, `yesterday` (their
 * start, local time), or ISO 8601 (`2026-11-22`, `2026-11-22T10:00`, with or without zone).
 */
export function parseTimeArg(text: string, now = Date.now()): number | undefined {
  const value = text.trim();
  if (value === 'now') return now;
  if (value === 'today') return startOfDay(now, 0);
  if (value === 'yesterday') return startOfDay(now, 1);
  const span = parseSpanMs(value);
  if (span !== undefined) return now - span;
  if (!/^\d{4}-\d{2}-\d{2}/.test(value)) return undefined;
  // A bare date is local midnight, as people mean it; Date.parse would take UTC.
  const time = /^\d{4}-\d{2}-\d{2}$/.test(value) ? new Date(`${value}T00:00`).getTime() : Date.parse(value);
  return Number.isNaN(time) ? undefined : time;
}

const SIZE_UNITS: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

/** Bytes from `200M`, `1G`, `512k`, `1048576`; undefined when not a size above 0. */
export function parseSizeBytes(text: string): number | undefined {
  const match = /^(\d+(?:\.\d+)?)\s*([kmg]?)(?:i?b)?$/i.exec(text.trim());
  if (!match) return undefined;
  const bytes = Math.round(Number(match[1]) * SIZE_UNITS[match[2]!.toLowerCase()]!);
  return bytes > 0 ? bytes : undefined;
}
