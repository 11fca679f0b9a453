// The board's send window and the collector's words, without a broker.
import { describe, expect, it } from 'vitest';
import { advanceInMemory, linksOf, parseCollectorWord, SendWindow, type CollectorWord } from './protocol.js';
import { checkMessage } from './records.js';

const at = (eventId: number, actionId = 0, incidentId = 0) => ({ eventId, actionId, incidentId });
const word = (kind: CollectorWord['kind'], event_id: number, action_id = 0, incident_id = 0): CollectorWord => ({ kind, marks: { event_id, action_id, incident_id } });
const limits = { records: 10, bytes: 1000, batchRecords: 4, batchBytes: 400 };

describe('the send window', () => {
  it('keeps at most its records and bytes in flight, and moves on only on the collector\'s acks', () => {
    const w = new SendWindow(at(0), limits, 0);
    w.messages = 3; // grown (see below)
    expect(w.room()).toEqual({ records: 4, bytes: 400 });
    w.published(at(4), 4, 300, 0);
    w.published(at(8), 4, 300, 0);
    expect(w.room()).toEqual({ records: 2, bytes: 400 });
    w.published(at(10), 2, 300, 0);
    expect(w.room()).toBeUndefined(); // 10 records in flight
    expect(w.heard(word('ack', 4), 1)).toBe(true);
    expect([w.confirmed, w.inFlightRecords]).toEqual([at(4), 6]);
    expect(w.heard(word('ack', 3), 1)).toBe(false); // an older ack takes nothing back
    expect(w.confirmed).toEqual(at(4));
  });

  it('starts with one message in flight, one more per message confirmed, and one again after a loss', () => {
    const w = new SendWindow(at(0), limits, 0);
    w.published(at(4), 4, 100, 0);
    expect(w.room()).toBeUndefined(); // one message until the collector answers
    w.heard(word('ack', 4), 1);
    expect(w.messages).toBe(2);
    w.published(at(8), 4, 100, 1);
    expect(w.room()).toEqual({ records: 4, bytes: 400 });
    w.published(at(12), 4, 100, 1);
    expect(w.room()).toBeUndefined();
    w.heard(word('ack', 12), 2);
    expect(w.messages).toBe(3); // at most the records' worth: 10 / 4 → 3
    w.heard(word('resend', 12), 3);
    expect(w.messages).toBe(1);
  });

  it('never takes a mark beyond what it sent (an earlier life of the history, a forged mark)', () => {
    const w = new SendWindow(at(5), limits, 0);
    w.published(at(9), 4, 100, 0);
    w.heard(word('ack', 1_000_000), 1);
    expect(w.confirmed).toEqual(at(9));
    w.heard(word('mark', 1_000_000), 2);
    expect([w.confirmed, w.sent]).toEqual([at(9), at(9)]);
  });

  it('sends again from the collector\'s marks when it says it has less, or asks', () => {
    const w = new SendWindow(at(0), limits, 0);
    w.published(at(4), 4, 100, 0);
    w.heard(word('ack', 4), 1);
    w.published(at(8), 4, 100, 1);
    w.heard(word('fresh', 2), 2); // a collector whose database has less
    expect([w.confirmed, w.sent, w.inFlightRecords]).toEqual([at(2), at(2), 0]);
    w.published(at(6), 4, 100, 3);
    w.heard(word('ack', 6), 4);
    w.published(at(10), 4, 100, 5);
    w.heard(word('resend', 5), 6); // a hole: resend never takes back what was confirmed
    expect([w.confirmed, w.sent]).toEqual([at(6), at(6)]);
  });

  it('sends again what is in flight after a silence, waiting longer each time', () => {
    const w = new SendWindow(at(0), limits, 0, 100, 350);
    w.published(at(4), 4, 100, 0);
    expect(w.timedOut(99)).toBe(false);
    expect(w.timedOut(100)).toBe(true);
    expect([w.sent, w.inFlightRecords]).toEqual([at(0), 0]);
    expect(w.timedOut(10_000)).toBe(false); // nothing in flight
    w.published(at(4), 4, 100, 100);
    expect(w.timedOut(299)).toBe(false); // 200 now
    expect(w.timedOut(300)).toBe(true);
    w.published(at(4), 4, 100, 300);
    expect(w.timedOut(300 + 349)).toBe(false); // at most 350
    expect(w.timedOut(300 + 350)).toBe(true);
    w.published(at(4), 4, 100, 700);
    w.heard(word('ack', 4), 710); // progress: the timeout is short again
    w.published(at(8), 4, 100, 720);
    expect(w.timedOut(820)).toBe(true);
  });

  it('lets a single record larger than a batch go alone', () => {
    const w = new SendWindow(at(0), { ...limits, batchBytes: 10 }, 0);
    expect(w.room()).toEqual({ records: 4, bytes: 10 });
    w.published(at(1), 1, 5000, 0);
    expect(w.room()).toBeUndefined();
  });
});

describe('what the collector says', () => {
  it('is read by topic, retained flag and its words; anything else is ignored', () => {
    const m = (o: unknown) => Buffer.from(JSON.stringify(o));
    const marks = { event_id: 3, action_id: 1, incident_id: 0 };
    expect(parseCollectorWord(m(marks), 'ack', false)).toEqual({ kind: 'ack', marks });
    expect(parseCollectorWord(m(marks), 'collected', false)).toEqual({ kind: 'ack', marks });
    expect(parseCollectorWord(m(marks), 'collected', true)).toEqual({ kind: 'mark', marks });
    expect(parseCollectorWord(m({ ...marks, fresh: true }), 'collected', false)).toEqual({ kind: 'fresh', marks });
    expect(parseCollectorWord(m({ ...marks, resend: true }), 'ack', false)).toEqual({ kind: 'resend', marks });
    for (const bad of ['x', '[]', '{}', JSON.stringify({ ...marks, event_id: -1 }), JSON.stringify({ ...marks, action_id: 1.5 })]) {
      expect(parseCollectorWord(Buffer.from(bad), 'ack', false)).toBeUndefined();
    }
  });
});

describe('a message from a board', () => {
  const event = (id: number) => ({ type: 'event', board: 'b', id, after: id - 1, action: 'add', subsystem: 'net', devpath: '/devices/x', received_at: new Date(0).toISOString() });
  it('is a batch of records or one record; bad records are refused one by one', () => {
    expect(checkMessage('b', Buffer.from(JSON.stringify(event(1))))).toEqual({ records: [event(1)], refused: [] });
    const batch = { type: 'batch', board: 'b', records: [event(1), { ...event(2), board: 'c' }, 7, event(3)] };
    const checked = checkMessage('b', Buffer.from(JSON.stringify(batch)));
    expect(checked.records.map((r) => r.id)).toEqual([1, 3]);
    expect(checked.refused).toEqual([expect.stringContaining('is not the topic'), 'a record that is not a JSON object']);
    expect(checkMessage('b', Buffer.from(JSON.stringify({ ...batch, board: 'c' }))).records).toEqual([]);
    expect(checkMessage('b', Buffer.from(JSON.stringify({ type: 'batch', board: 'b', records: Array(1001).fill(event(1)) }))).refused).toEqual([expect.stringContaining('at most 1000')]);
  });
});

describe('the collector\'s marks moved in memory', () => {
  const m = (event_id: number, action_id = 0, incident_id = 0) => ({ event_id, action_id, incident_id });
  it('follow a message that continues the chain, and say when only the database can tell', () => {
    const records = [
      { type: 'event', id: 11, after: 10, actions: [{ id: 5, after: 4 }] },
      { type: 'event', id: 12, after: 11, actions: [] },
      { type: 'incident', id: 2, after: 1 },
    ];
    expect(advanceInMemory(m(10, 4, 1), linksOf(records))).toMatchObject({ marks: m(12, 5, 2), complete: true });
    // A hole before the message: nothing moves; its links wait, and connect when the hole is filled.
    const waiting = advanceInMemory(m(9, 4, 1), linksOf(records));
    expect(waiting).toMatchObject({ marks: m(9, 5, 2), complete: false, overflowed: false });
    expect(waiting.pending.event_id).toEqual([[11, 10], [12, 11]]);
    expect(advanceInMemory(waiting.marks, linksOf([{ type: 'event', id: 10, after: 9, actions: [] }]), waiting.pending)).toMatchObject({ marks: m(12, 5, 2), complete: true });
    // Sent again from an earlier point: already behind the marks, complete.
    expect(advanceInMemory(m(12, 5, 2), linksOf(records))).toMatchObject({ marks: m(12, 5, 2), complete: true });
    // The lowest successor wins over a stray far-ahead id.
    expect(advanceInMemory(m(10), linksOf([{ type: 'event', id: 1e12, after: 10 }, { type: 'event', id: 11, after: 10 }])).marks.event_id).toBe(11);
  });
});

describe('the silence a board waits for', () => {
  it('grows with the round trips it measured (a collector with a long queue), never below the base', () => {
    const w = new SendWindow(at(0), limits, 0, 100, 60_000);
    let t = 0;
    for (let i = 1; i <= 20; i++) {
      w.published(at(i * 4), 4, 100, t);
      t += 1000; // each confirmed a second later
      w.heard(word('ack', i * 4), t);
    }
    w.published(at(100), 4, 100, t);
    expect(w.timedOut(t + 999)).toBe(false); // 100 ms would have timed out: a second is normal now
    expect(w.timedOut(t + 5000)).toBe(true);
  });
});
