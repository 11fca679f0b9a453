// A collector's view of boards' chains: marks move in memory, in whatever order messages are stored.
import { describe, expect, it } from 'vitest';
import { BoardChains } from './board-chains.js';

const event = (id: number) => ({ type: 'event', id, after: id - 1, actions: [{ id, after: id - 1 }] });

describe('a collector\'s boards', () => {
  it('moves marks in memory once read, whatever the order messages are stored in', () => {
    const chains = new BoardChains();
    chains.stored('b', [event(1), event(2)]);
    expect(chains.get('b').needsDb).toBe(true); // marks unknown: the database first
    chains.read('b', { event_id: 2, action_id: 2, incident_id: 0 });
    chains.stored('b', [event(5), event(6)]); // stored before 3 and 4 (another connection)
    expect(chains.get('b').marks).toEqual({ event_id: 2, action_id: 2, incident_id: 0 });
    expect(chains.get('b').highest).toEqual({ event_id: 6, action_id: 6, incident_id: 0 });
    chains.stored('b', [event(3), event(4)]);
    expect(chains.get('b')).toMatchObject({ marks: { event_id: 6, action_id: 6, incident_id: 0 }, needsDb: false });
  });

  it('asks the database again when too many records wait beyond a hole', () => {
    const chains = new BoardChains();
    chains.read('b', { event_id: 0, action_id: 0, incident_id: 0 });
    chains.stored('b', Array.from({ length: 10_001 }, (_, i) => event(i + 2)));
    expect(chains.get('b').needsDb).toBe(true);
  });
});
