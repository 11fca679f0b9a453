import { describe, expect, it } from 'vitest';
import { SeqnumTracker } from './seqnum.js';

describe('SeqnumTracker', () => {
  it.each([
    ['consecutive numbers', [1, 2, 3], []],
    ['one missing', [1, 2, 4], [{ after: 2, before: 4, missed: 1 }]],
    ['a large jump', [10, 5000], [{ after: 10, before: 5000, missed: 4989 }]],
    ['events without SEQNUM are ignored', [1, undefined, 2], []],
    ['the first number is never a gap', [900], []],
    ['a lower number restarts the count', [10, 3, 4, 6], [{ after: 4, before: 6, missed: 1 }]],
  ] as const)('%s', (_name, seqnums, gaps) => {
    const tracker = new SeqnumTracker();
    const found = seqnums.map((s) => tracker.observe(s)).filter((g) => g !== undefined);
    expect(found).toEqual(gaps);
  });
});
