// Output helpers for the history commands: backpressure-aware lines, terminal-safe text,
// aligned tables that stream, CSV.

/** Writes a line, waiting when stdout is full, so a large history streams in bounded memory. */
export async function writeLine(line: string): Promise<void> {
  if (!process.stdout.write(`${line}\n`)) await new Promise((resolve) => process.stdout.once('drain', resolve));
}

/**
 * Text from devices (serials, product names) is chosen by whoever built them: control
 * characters are shown escaped, never sent to the terminal.
 */
export function printable(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\x00-\x1f\x7f-\x9f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/** Local time with milliseconds: what an operator reads on a board's console. */
export function localTime(iso: string): string {
  const d = new Date(iso);
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

/**
 * An aligned table that streams: widths come from the first `sample` rows (and the
 * header); later rows wider than that push their line out rather than wait for the end.
 */
export class StreamingTable {
  #header: string[];
  #sample: string[][] = [];
  #widths: number[] | undefined;
  #sampleSize: number;

  constructor(header: string[], sampleSize = 500) {
    this.#header = header;
    this.#sampleSize = sampleSize;
  }

  async add(cells: string[]): Promise<void> {
    const row = cells.map(printable);
    if (this.#widths) return writeLine(this.#format(row));
    this.#sample.push(row);
    if (this.#sample.length >= this.#sampleSize) await this.flush();
  }

  /** Prints what is buffered (call at the end, and before waiting for new rows). */
  async flush(): Promise<void> {
    if (!this.#widths) {
      this.#widths = this.#header.map((h, i) => Math.max(h.length, ...this.#sample.map((r) => r[i]!.length)));
      await writeLine(this.#format(this.#header));
    }
    const rows = this.#sample;
    this.#sample = [];
    for (const row of rows) await writeLine(this.#format(row));
  }

  #format(row: string[]): string {
    const widths = this.#widths!;
    return row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ').trimEnd();
  }
}

/** One CSV field (RFC 4180), with spreadsheet formulas neutralised: values come from devices. */
export function csvField(value: unknown): string {
  let text = value === null || value === undefined ? '' : typeof value === 'string' ? value : JSON.stringify(value);
  if (/^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return /[",\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}
