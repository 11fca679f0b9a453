// Durations as people write them in rules and options: 500ms, 30s, 2m, 1h (a bare number is seconds).

export const MAX_DURATION_MS = 24 * 3600 * 1000;

/** Milliseconds, or undefined when the text is not a duration above 0 and up to 24 h. */
export function parseDurationMs(text: string): number | undefined {
  const match = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h)?$/.exec(text);
  const unit = match?.[2];
  const ms = match ? Number(match[1]) * (unit === 'ms' ? 1 : unit === 'm' ? 60_000 : unit === 'h' ? 3_600_000 : 1000) : NaN;
  return ms > 0 && ms <= MAX_DURATION_MS ? Math.round(ms) : undefined;
}
