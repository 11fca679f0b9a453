// The fleet part of `hotplugd serve --fleet`: the boards of a collected fleet database and
// each board's events, as `hotplugd boards` and `hotplugd history --board` show them.
import { boardNameProblem } from '../fleet/broker.js';
import type { FleetStore } from '../fleet/store.js';
import type { HistoryRecord } from '../history/query.js';
import { BadRequest, limit, list, time } from './api.js';

export async function boards(store: FleetStore) {
  return { boards: await store.boards() };
}

/** A board's newest events (default 100), oldest first, with the filters of `history --board`. */
export async function boardEvents(store: FleetStore, board: string, query: URLSearchParams) {
  if (boardNameProblem(board) !== undefined) throw new BadRequest(`board: not a board name: ${JSON.stringify(board)}`);
  const events: HistoryRecord[] = [];
  const filter = { board, subsystems: list(query, 'subsystem'), actions: list(query, 'action'), since: time(query, 'since'), until: time(query, 'until') };
  for await (const record of store.events(filter, limit(query, 100))) events.push(record);
  return { board, events };
}
