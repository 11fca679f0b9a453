// What a collector knows of each board's chains of records: the marks, moved in memory as it
// stores messages (links beyond a hole wait until it is filled: messages of one board may be
// stored out of order by parallel connections), the highest ids it stored, holes, and what it
// last published and kept. Pure: the database is asked by the collector, when `needsDb`.
import type { Marks, Payload } from './records.js';
import { advanceInMemory, linksOf, type PendingLinks } from './protocol.js';

export interface BoardState {
  /** Records stored by this collector since its acknowledgement was last sent. */
  stored: boolean;
  /** The highest id this collector stored, per stream. */
  highest: Marks;
  /** How far the chain goes (undefined until read from the database). */
  marks?: Marks;
  /** Links stored beyond the marks. */
  pending?: PendingLinks;
  /** The marks are unknown, or links were dropped: the database must walk the chain. */
  needsDb: boolean;
  /** The marks last published retained, and last kept in the database, as JSON. */
  published?: string;
  kept?: string;
  /** Since when the chain has had a hole (highest beyond the marks); when a resend was last asked. */
  holeSince?: number;
  askedAt?: number;
}

export const beyond = (h: Marks, m: Marks): boolean => h.event_id > m.event_id || h.action_id > m.action_id || h.incident_id > m.incident_id;

export class BoardChains {
  #boards = new Map<string, BoardState>();

  get(name: string): BoardState {
    let state = this.#boards.get(name);
    if (state === undefined) this.#boards.set(name, (state = { stored: false, needsDb: true, highest: { event_id: 0, action_id: 0, incident_id: 0 } }));
    return state;
  }

  entries(): IterableIterator<[string, BoardState]> {
    return this.#boards.entries();
  }

  /** One message's records of a board were stored. */
  stored(name: string, records: readonly Payload[]): void {
    const state = this.get(name);
    state.stored = true;
    const links = linksOf(records);
    if (state.marks !== undefined && !state.needsDb) {
      const moved = advanceInMemory(state.marks, links, state.pending);
      state.marks = moved.marks;
      state.pending = moved.pending;
      state.needsDb = moved.overflowed;
    } else state.needsDb = true;
    for (const key of ['event_id', 'action_id', 'incident_id'] as const) {
      for (const [id] of links[key]) if (id > state.highest[key]) state.highest[key] = id;
    }
  }

  /** The database said how far the chain goes. */
  read(name: string, marks: Marks): void {
    const state = this.get(name);
    state.marks = marks;
    state.needsDb = false;
    state.kept = JSON.stringify(marks);
    if (state.pending) state.pending = advanceInMemory(marks, { event_id: [], action_id: [], incident_id: [] }, state.pending).pending;
  }
}
