// Fan-out to subscribers at a cost that does not grow with their number on the event
// path. Each line is serialised once, into a shared log of recent lines; a subscriber is
// a cursor into that log. Writes happen once per turn of the event loop: subscribers with
// the same filter that are up to date share one buffer of the lines of that turn (one
// write each, no copy per subscriber); one that fell behind catches up line by line until
// its socket is full. Memory is the log, which keeps lines only as far back as the
// slowest subscriber needs and never more than `maxLagBytes` behind the newest: a
// subscriber further behind is dropped. Stalled subscribers so cost the same few MiB
// whether there is one of them or two hundred.
import type { Socket } from 'node:net';

/** What a subscriber's filter looks at. */
export interface LineKeys {
  subsystem: string;
  action: string;
  tags: readonly string[];
}

interface Line {
  bytes: Buffer;
  keys: LineKeys;
  /**
   * `event`: a processed event, for readers whose filter passes it; `result`: a later result
   * (a job, a unit), also only for readers that asked for results; `incident`: a loss or
   * repair of the history (an overflow, a SEQNUM gap), for every reader that asked for them.
   */
  kind: 'event' | 'result' | 'incident';
  /** Bytes appended before this line, since the start: lag is a difference of two of these. */
  offset: number;
}

export interface Reader {
  socket: Socket;
  /** Readers with the same key have the same filter, so they can share a buffer. */
  filterKey: string;
  matches(keys: LineKeys): boolean;
  results: boolean;
  /** Incident lines too (they concern every device, so the filter does not apply). */
  incidents?: boolean;
  /** The sequence number of the next line to send. */
  cursor: number;
  /** False while the reader replays the history: lines wait in the log for it. */
  live: boolean;
  /** True while its socket is full (until 'drain'). */
  blocked: boolean;
}

const CATCH_UP_BYTES = 256 * 1024;
const NO_KEYS: LineKeys = { subsystem: '', action: '', tags: [] };

export class FanOut {
  #lines: Line[] = [];
  /** Sequence number of #lines[0]. */
  #base = 0;
  #appendedBytes = 0;
  #readers = new Set<Reader>();
  #scheduled = false;
  /** Sequence number up to which every up-to-date reader has been written. */
  #flushedTo = 0;
  #maxLagBytes: number;
  #onDrop: (reader: Reader, why: string) => void;

  constructor(maxLagBytes: number, onDrop: (reader: Reader, why: string) => void) {
    this.#maxLagBytes = maxLagBytes;
    this.#onDrop = onDrop;
  }

  /** The sequence number the next line will get. */
  get end(): number {
    return this.#base + this.#lines.length;
  }

  /** Bytes the log holds now. */
  get heldBytes(): number {
    const first = this.#lines[0];
    return first === undefined ? 0 : this.#appendedBytes - first.offset;
  }

  add(reader: Reader): void {
    this.#readers.add(reader);
  }

  remove(reader: Reader): void {
    this.#readers.delete(reader);
  }

  append(bytes: Buffer, keys: LineKeys, result: boolean): void {
    this.#push({ bytes, keys, kind: result ? 'result' : 'event', offset: this.#appendedBytes });
  }

  /** An incident line: for the readers that asked for incidents, whatever their filter. */
  appendIncident(bytes: Buffer): void {
    this.#push({ bytes, keys: NO_KEYS, kind: 'incident', offset: this.#appendedBytes });
  }

  #push(line: Line): void {
    this.#lines.push(line);
    this.#appendedBytes += line.bytes.length;
    this.schedule();
  }

  /** Writes out what waits at the end of this turn of the event loop. */
  schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => this.#flush());
  }

  #flush(): void {
    this.#scheduled = false;
    const end = this.end;
    const shared = new Map<string, Buffer>();
    for (const reader of this.#readers) {
      if (!reader.live || reader.blocked || reader.cursor >= end) continue;
      if (reader.cursor === this.#flushedTo) {
        let bytes = shared.get(reader.filterKey);
        if (bytes === undefined) {
          bytes = this.#batch(reader, this.#flushedTo, end);
          shared.set(reader.filterKey, bytes);
        }
        if (bytes.length > 0) reader.socket.write(bytes);
        reader.cursor = end;
      } else {
        this.#catchUp(reader, end);
      }
      if (reader.socket.writableNeedDrain) this.#block(reader);
    }
    this.#flushedTo = end;
    this.#release();
  }

  #batch(reader: Reader, from: number, to: number): Buffer {
    const chunks: Buffer[] = [];
    for (let seq = from; seq < to; seq++) {
      const line = this.#lines[seq - this.#base] as Line;
      if (this.#wants(reader, line)) chunks.push(line.bytes);
    }
    return chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
  }

  // Line by line, corked into one write of at most CATCH_UP_BYTES a turn (the lines are
  // the log's own buffers, not copies): a reader that keeps up soon shares batches again.
  #catchUp(reader: Reader, end: number): void {
    const socket = reader.socket;
    let written = 0;
    socket.cork();
    while (reader.cursor < end && written < CATCH_UP_BYTES) {
      const line = this.#lines[reader.cursor - this.#base] as Line;
      if (this.#wants(reader, line)) {
        socket.write(line.bytes);
        written += line.bytes.length;
      }
      reader.cursor++;
    }
    socket.uncork();
  }

  #wants(reader: Reader, line: Line): boolean {
    if (line.kind === 'incident') return reader.incidents === true;
    return (line.kind === 'event' || reader.results) && reader.matches(line.keys);
  }

  #block(reader: Reader): void {
    reader.blocked = true;
    reader.socket.once('drain', () => {
      reader.blocked = false;
      this.schedule();
    });
  }

  // Drops readers too far behind, then forgets the lines nobody needs any more.
  #release(): void {
    let oldest = this.end;
    for (const reader of this.#readers) {
      const lag = reader.cursor < this.end ? this.#appendedBytes - (this.#lines[reader.cursor - this.#base] as Line).offset : 0;
      if (lag > this.#maxLagBytes) {
        this.#readers.delete(reader);
        this.#onDrop(reader, reader.live ? `it did not read (${lag} bytes waiting)` : 'its replay fell too far behind');
      } else if (reader.cursor < oldest) {
        oldest = reader.cursor;
      }
    }
    const unneeded = oldest - this.#base;
    if (unneeded === 0) return;
    // Splicing the front of a long array costs a copy: do it once a batch is worth it.
    if (unneeded === this.#lines.length) this.#lines = [];
    else if (unneeded >= 1024 || unneeded * 2 >= this.#lines.length) this.#lines.splice(0, unneeded);
    else return;
    this.#base = oldest;
  }
}
