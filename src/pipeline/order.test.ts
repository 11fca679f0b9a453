import { describe, expect, it } from 'vitest';
import { DependencyTracker, ancestorPaths, devpathsConflict, type OrderEntry } from './order.js';

type Ev = { seq: number; devpath: string; devpathOld?: string };

function track(events: Ev[]) {
  const tracker = new DependencyTracker<Ev>();
  const entries = events.map((e) => tracker.add(e, e));
  return { tracker, entries, waiting: entries.map((e) => e.waitingOn) };
}

const seqs = (ready: OrderEntry<Ev>[]) => ready.map((e) => e.item.seq);

describe('devpath conflicts', () => {
  it('lists proper ancestors outermost first', () => {
    expect(ancestorPaths('/devices/virtual/net/lo')).toEqual(['/devices', '/devices/virtual', '/devices/virtual/net']);
    expect(ancestorPaths('/devices')).toEqual([]);
  });

  it('conflicts on the same path and along the tree, not on a shared name prefix', () => {
    expect(devpathsConflict('/devices/a', '/devices/a')).toBe(true);
    expect(devpathsConflict('/devices/a', '/devices/a/b')).toBe(true);
    expect(devpathsConflict('/devices/a/b', '/devices/a')).toBe(true);
    expect(devpathsConflict('/devices/a', '/devices/ab')).toBe(false);
    expect(devpathsConflict('/devices/a/b', '/devices/a/c')).toBe(false);
  });
});

describe('DependencyTracker', () => {
  it('lets unrelated events run at once', () => {
    const { waiting } = track([
      { seq: 1, devpath: '/devices/virtual/net/va' },
      { seq: 2, devpath: '/devices/virtual/net/vb' },
      { seq: 3, devpath: '/devices/virtual/net/vab' },
    ]);
    expect(waiting).toEqual([0, 0, 0]);
  });

  it('chains events on one devpath, each waiting only for the one before', () => {
    const { tracker, entries, waiting } = track([1, 2, 3].map((seq) => ({ seq, devpath: '/devices/virtual/net/lo' })));
    expect(waiting).toEqual([0, 1, 1]);
    expect(seqs(tracker.finish(entries[0]!))).toEqual([2]);
    expect(seqs(tracker.finish(entries[1]!))).toEqual([3]);
    expect(seqs(tracker.finish(entries[2]!))).toEqual([]);
    expect(tracker.pendingPaths).toBe(0);
  });

  it("holds children until the parent's add is done, and the parent's remove until the children's", () => {
    const parent = '/devices/virtual/net/va';
    const { tracker, entries, waiting } = track([
      { seq: 1, devpath: parent },
      { seq: 2, devpath: `${parent}/queues/rx-0` },
      { seq: 3, devpath: `${parent}/queues/tx-0` },
      { seq: 4, devpath: parent },
    ]);
    expect(waiting).toEqual([0, 1, 1, 3]);
    expect(seqs(tracker.finish(entries[0]!))).toEqual([2, 3]);
    expect(seqs(tracker.finish(entries[2]!))).toEqual([]);
    expect(seqs(tracker.finish(entries[1]!))).toEqual([4]);
  });

  it('blocks a move on both its paths, and later events on either path behind it', () => {
    const { tracker, entries, waiting } = track([
      { seq: 1, devpath: '/devices/virtual/net/old' },
      { seq: 2, devpath: '/devices/virtual/net/new' },
      { seq: 3, devpath: '/devices/virtual/net/new', devpathOld: '/devices/virtual/net/old' },
      { seq: 4, devpath: '/devices/virtual/net/old' },
      { seq: 5, devpath: '/devices/virtual/net/other' },
    ]);
    expect(waiting).toEqual([0, 0, 2, 1, 0]);
    expect(seqs(tracker.finish(entries[1]!))).toEqual([]);
    expect(seqs(tracker.finish(entries[0]!))).toEqual([3]);
    expect(seqs(tracker.finish(entries[2]!))).toEqual([4]);
  });

  it('does not wait for an event that has already finished', () => {
    const tracker = new DependencyTracker<Ev>();
    const first = tracker.add({ seq: 1, devpath: '/devices/a' }, { devpath: '/devices/a' });
    tracker.finish(first);
    const second = tracker.add({ seq: 2, devpath: '/devices/a/b' }, { devpath: '/devices/a/b' });
    expect(second.waitingOn).toBe(0);
  });

  it('matches the pairwise rule on random sequences (a waits for b iff b is earlier, pending and conflicting)', () => {
    const paths = ['/d/a', '/d/a/b', '/d/a/b/c', '/d/a/x', '/d/ab', '/d/e', '/d/e/f'];
    let seed = 7;
    const random = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
    for (let round = 0; round < 200; round++) {
      const tracker = new DependencyTracker<Ev>();
      const pending: { ev: Ev; entry: OrderEntry<Ev> }[] = [];
      const started = new Set<number>();
      for (let seq = 1; seq <= 12; seq++) {
        const ev: Ev = { seq, devpath: paths[random(paths.length)]! };
        if (random(5) === 0) ev.devpathOld = paths[random(paths.length)]!;
        const entry = tracker.add(ev, ev);
        pending.push({ ev, entry });
        // Now and then finish a random event that can run (nothing it waits for is pending).
        if (random(2) === 0) {
          const runnable = pending.filter((p) => p.entry.waitingOn === 0 && !started.has(p.ev.seq));
          const pick = runnable[random(runnable.length)];
          if (pick) {
            started.add(pick.ev.seq);
            tracker.finish(pick.entry);
            pending.splice(pending.indexOf(pick), 1);
          }
        }
      }
      for (const { ev, entry } of pending) {
        const keys = (e: Ev) => [e.devpath, ...(e.devpathOld ? [e.devpathOld] : [])];
        const mustWait = pending.some(
          (other) => other.ev.seq < ev.seq && keys(other.ev).some((a) => keys(ev).some((b) => devpathsConflict(a, b))),
        );
        expect(entry.waitingOn > 0, `round ${round} seq ${ev.seq}`).toBe(mustWait);
      }
    }
  });
});
