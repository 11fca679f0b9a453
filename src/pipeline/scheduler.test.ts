import { describe, expect, it } from 'vitest';
import { EventScheduler } from './scheduler.js';

type Ev = { seq: number; devpath: string; devpathOld?: string; ms?: number };

const tick = () => new Promise((resolve) => setImmediate(resolve));
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function recorder(options: { capacity?: number; maxRunning?: number; chunk?: number } = {}) {
  const log: string[] = [];
  let running = 0;
  let peak = 0;
  const scheduler = new EventScheduler<Ev>(
    { capacity: options.capacity ?? 100, maxRunning: options.maxRunning ?? 8, chunk: options.chunk ?? 1024 },
    {
      handle(ev) {
        if (ev.ms === undefined) {
          log.push(`${ev.seq}`);
          return;
        }
        log.push(`start ${ev.seq}`);
        peak = Math.max(peak, ++running);
        return sleep(ev.ms).then(() => {
          running--;
          log.push(`end ${ev.seq}`);
        });
      },
      onFull: () => log.push(`full@${scheduler.length}`),
      onRoom: () => log.push(`room@${scheduler.length}`),
      onIdle: () => log.push('idle'),
    },
  );
  return { scheduler, log, peak: () => peak };
}

describe('EventScheduler', () => {
  it('handles synchronous events in order, a chunk per turn of the event loop', async () => {
    const { scheduler, log } = recorder({ chunk: 3 });
    for (let seq = 1; seq <= 7; seq++) scheduler.push({ seq, devpath: '/d/lo' });
    expect(log).toEqual([]);
    await tick();
    expect(log).toEqual(['1', '2', '3']);
    expect(await scheduler.idle(1000)).toBe(true);
    expect(log).toEqual(['1', '2', '3', '4', '5', '6', '7', 'idle']);
  });

  it('runs unrelated slow events at once but a device, its parent and its children one after another', async () => {
    const { scheduler, log, peak } = recorder();
    scheduler.push({ seq: 1, devpath: '/d/va', ms: 40 });
    scheduler.push({ seq: 2, devpath: '/d/vb', ms: 40 });
    scheduler.push({ seq: 3, devpath: '/d/va/queues/rx-0', ms: 10 });
    scheduler.push({ seq: 4, devpath: '/d/vb/queues/rx-0' });
    scheduler.push({ seq: 5, devpath: '/d/va', ms: 10 });
    expect(await scheduler.idle(2000)).toBe(true);
    expect(peak()).toBe(2);
    const at = (entry: string) => log.indexOf(entry);
    expect(at('start 2')).toBeLessThan(at('end 1')); // concurrent
    expect(at('start 3')).toBeGreaterThan(at('end 1')); // child after parent
    expect(at('4')).toBeGreaterThan(at('end 2'));
    expect(at('start 5')).toBeGreaterThan(at('end 3')); // parent after child
  });

  it('never runs more than maxRunning at once', async () => {
    const { scheduler, peak } = recorder({ maxRunning: 3 });
    for (let seq = 1; seq <= 10; seq++) scheduler.push({ seq, devpath: `/d/v${seq}`, ms: 5 });
    expect(await scheduler.idle(2000)).toBe(true);
    expect(peak()).toBe(3);
  });

  it('counts pending events against its capacity and asks the producer to stop and go on', async () => {
    const { scheduler, log } = recorder({ capacity: 4 });
    for (let seq = 1; seq <= 5; seq++) scheduler.push({ seq, devpath: '/d/lo', ms: 1 });
    expect(log).toEqual(['full@4']);
    expect(scheduler.length).toBe(5);
    expect(await scheduler.idle(2000)).toBe(true);
    expect(log.filter((l) => !l.startsWith('start') && !l.startsWith('end'))).toEqual(['full@4', 'room@2', 'idle']);
  });

  it('hands back the events that have not started, and none of them runs afterwards', async () => {
    const { scheduler, log } = recorder();
    scheduler.push({ seq: 1, devpath: '/d/a', ms: 30 });
    scheduler.push({ seq: 2, devpath: '/d/a' });
    scheduler.push({ seq: 3, devpath: '/d/b', ms: 1 });
    await tick();
    scheduler.push({ seq: 4, devpath: '/d/c' });
    const taken = scheduler.takeQueued();
    expect(taken.map((e) => e.seq)).toEqual([2, 4]);
    expect(await scheduler.idle(2000)).toBe(true);
    expect(log).not.toContain('2');
    expect(log).not.toContain('4');
    expect(log).toContain('end 1');
  });

  it('reports a timeout when it does not become idle in time', async () => {
    const { scheduler } = recorder();
    scheduler.push({ seq: 1, devpath: '/d/a', ms: 200 });
    expect(await scheduler.idle(20)).toBe(false);
    expect(scheduler.running).toBe(1);
    expect(await scheduler.idle(1000)).toBe(true);
  });

  it('without a timeout, waits as long as it takes and holds no timer', async () => {
    const { scheduler } = recorder();
    scheduler.push({ seq: 1, devpath: '/d/a', ms: 50 });
    const timersBefore = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const idle = scheduler.idle();
    expect(process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length).toBe(timersBefore);
    expect(await idle).toBe(true);
    expect(scheduler.length).toBe(0);
  });
});
