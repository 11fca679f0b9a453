import { describe, expect, it } from 'vitest';
import { EventQueue } from './queue.js';

function recorder(capacity: number) {
  const log: string[] = [];
  const handled: number[] = [];
  const queue = new EventQueue<number>(capacity, {
    handle: (n) => handled.push(n),
    onFull: () => log.push(`full@${queue.length}`),
    onRoom: () => log.push(`room@${queue.length}`),
    onIdle: () => log.push('idle'),
  }, 3);
  return { queue, log, handled };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('EventQueue', () => {
  it('hands items over in order, a chunk per turn of the event loop', async () => {
    const { queue, handled, log } = recorder(100);
    for (let i = 0; i < 7; i++) queue.push(i);
    expect(handled).toEqual([]);
    await tick();
    expect(handled).toEqual([0, 1, 2]);
    await tick();
    await tick();
    expect(handled).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(log).toEqual(['idle']);
  });

  it('says full at capacity and room again at half, keeping every item', async () => {
    const { queue, handled, log } = recorder(4);
    for (let i = 0; i < 6; i++) queue.push(i);
    expect(log).toEqual(['full@4']);
    expect(queue.length).toBe(6);
    await tick(); // 3 handled, 3 left: not yet half of 4
    expect(log).toEqual(['full@4']);
    await tick(); // 6 handled
    expect(log).toEqual(['full@4', 'room@0', 'idle']);
    expect(handled).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it('drains synchronously on demand', () => {
    const { queue, handled } = recorder(10);
    for (let i = 0; i < 5; i++) queue.push(i);
    queue.drain();
    expect(handled).toEqual([0, 1, 2, 3, 4]);
    expect(queue.length).toBe(0);
  });

  it('keeps order across ring wrap-around and growth', async () => {
    const { queue, handled } = recorder(2);
    const expected: number[] = [];
    for (let round = 0; round < 5; round++) {
      for (let i = 0; i < 5; i++) {
        queue.push(round * 10 + i);
        expected.push(round * 10 + i);
      }
      await tick();
    }
    queue.drain();
    expect(handled).toEqual(expected);
  });
});
