// The one KEY=VALUE parser, for what import programs print and IMPORT{file} reads.

/** KEY=VALUE lines: whitespace trimmed, `#` comments skipped, one level of quotes removed. */
export function parseProperties(text: string): [string, string][] {
  const pairs: [string, string][] = [];
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    if (eq <= 0) continue;
    const key = line.slice(0, eq).trim();
    let value = line.slice(eq + 1).trim();
    if (key === '' || value === '') continue;
    if (value[0] === '"' || value[0] === "'") {
      if (value.length === 1 || value.at(-1) !== value[0]) continue;
      value = value.slice(1, -1);
    }
    pairs.push([key, value]);
  }
  return pairs;
}
