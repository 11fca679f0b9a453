// One grammar for durations, points in time and sizes, used by rule files, command-line
// options and the control socket alike: `500ms`, `30s`, `2m`, `1h`, `2d`, `1w` (a bare
// number is seconds); times as a duration ago, `now`, `today`, `yesterday` or ISO 8601;
// sizes as `65536`, `512K`, `200M`, `1G`.

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** The longest timeout a rule or a wait may ask for. */
export const MAX_TIMEOUT_MS = 24 * 3600 * 1000;

/**
 * Milliseconds from a duration above 0 (`500ms`, `30s`, `2m`, `1h`, `2d`, `1w`; a bare
 * number is seconds), or undefined when the text is not one or is longer than `maxMs`.
 */
export function parseDurationMs(text: string, maxMs = Infinity): number | undefined {
  const match = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?$/.exec(text.trim());
  if (!match) return undefined;
  const ms = Math.round(Number(match[1]) * (UNIT_MS[match[2] ?? 's'] as number));
  return ms > 0 && ms <= maxMs ? ms : undefined;
}

function startOfDay(time: number, daysBack: number): number {
  const date = new Date(time);
  date.setHours(0, 0, 0, 0);
  date.setDate(date.getDate() - daysBack);
  return date.getTime();
}

/**
 * A point in time (epoch ms): a duration ago (`10m`, `1h`, `2d`), `now`, `today`,
 * `yesterday` (their start, local time), or ISO 8601 (`2026-11-22`, `2026-11-22T10:00`,
 * with or without zone).
 */
export function parseTimeArg(text: string, now = Date.now()): number | undefined {
  const value = text.trim();
  if (value === 'now') return now;
  if (value === 'today') return startOfDay(now, 0);
  if (value === 'yesterday') return startOfDay(now, 1);
  const ago = parseDurationMs(value);
  if (ago !== undefined) return now - ago;
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
