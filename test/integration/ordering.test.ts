// udev's ordering with real kernel events: a device's events, its parent's and its
// children's run one after another, unrelated devices' at once; and the commands that
// wait for the daemon (settle, wait, trigger --settle) return only when the work is done.
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { canUseNamespaces, startRuleDaemon } from '../helpers/netns.js';

const NET = '/devices/virtual/net';
const ONE_QUEUE = ['numtxqueues', '1', 'numrxqueues', '1'];
const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0).reverse()) cleanup();
});

async function setup(prefix: string, rules: string, args: string[] = []) {
  const log = join(tmpdir(), `hotplugd-steps-${prefix}-${process.pid}-${Date.now()}.log`);
  writeFileSync(log, '');
  cleanups.push(() => rmSync(log, { force: true }));
  const started = await startRuleDaemon(prefix, cleanups, rules.replaceAll('@LOG@', JSON.stringify(log)).replaceAll('@NODE@', JSON.stringify(process.execPath)), args);
  return { ...started, log };
}

// A program that logs "start NAME t", sleeps, then logs "end NAME t" (appends are atomic).
const STEP = (name: string, ms: number) =>
  `[@NODE@, "-e", "const fs=require('fs');const l=process.argv[1];fs.appendFileSync(l,'start ${name} '+Date.now()+'\\\\n');` +
  `setTimeout(()=>fs.appendFileSync(l,'end ${name} '+Date.now()+'\\\\n'),${ms})", @LOG@]`;

interface Step { kind: string; name: string; at: number }
const steps = (log: string): Step[] =>
  readFileSync(log, 'utf8').trim().split('\n').filter(Boolean).map((line) => {
    const [kind, name, at] = line.split(' ');
    return { kind: kind!, name: name!, at: Number(at) };
  });

describe.skipIf(!canUseNamespaces())('event ordering and waiting for the daemon', () => {
  it("runs unrelated devices' events at once, and a device's queues only after its own add finished", async () => {
    const { netns, daemon, log } = await setup('order', `rules:
  - name: slow-add
    match: { action: add, subsystem: net }
    run: [${STEP('$kernel', 400)}]
  - name: queue
    match: { action: add, subsystem: queues }
    run: [${STEP('$devpath', 0)}]
`);
    const names = ['oa0', 'oa1', 'ob0', 'ob1', 'oc0', 'oc1'];
    for (let i = 0; i < names.length; i += 2) netns.ip('link', 'add', names[i]!, ...ONE_QUEUE, 'type', 'veth', 'peer', 'name', names[i + 1]!, ...ONE_QUEUE);
    const settled = await daemon.cli(netns, 'settle', '--timeout', '30s');
    expect(settled.code, settled.stderr).toBe(0);
    // settle returned after every program: all ends are already logged.
    const all = steps(log);
    const ends = new Map(all.filter((s) => s.kind === 'end' && !s.name.startsWith('/')).map((s) => [s.name, s.at]));
    expect([...ends.keys()].sort()).toEqual([...names].sort());
    const queueStarts = all.filter((s) => s.kind === 'start' && s.name.includes('/queues/'));
    expect(queueStarts).toHaveLength(names.length * 2);
    for (const queue of queueStarts) {
      const parent = queue.name.slice(`${NET}/`.length).split('/')[0]!;
      expect(queue.at, `${queue.name} started before ${parent}'s add finished`).toBeGreaterThanOrEqual(ends.get(parent)!);
    }
    // Six 0.4 s programs one after another would take 2.4 s; they overlapped.
    const starts = all.filter((s) => s.kind === 'start' && !s.name.startsWith('/')).map((s) => s.at);
    expect(Math.max(...ends.values()) - Math.min(...starts)).toBeLessThan(2000);
    expect(starts.some((start) => [...ends.values()].some((end) => start < end - 100 && end - 400 < start))).toBe(true);
    expect(await daemon.stop()).toBe(0);
  }, 60_000);

  it('trigger --settle returns when the events it caused are processed, not before', async () => {
    const { netns, daemon, log } = await setup('trig', `rules:
  - name: slow-change
    match: { action: change, subsystem: net, kernel: "tr*" }
    run: [${STEP('$kernel', 300)}]
`);
    netns.ip('link', 'add', 'tr0', 'type', 'veth', 'peer', 'name', 'tr1');
    expect((await daemon.cli(netns, 'settle')).code).toBe(0);
    const result = await daemon.cli(netns, 'trigger', '--settle', '--subsystem-match', 'net', '--timeout', '20s');
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout.split('\n')).toEqual(expect.arrayContaining([`${NET}/tr0`, `${NET}/tr1`, `${NET}/lo`]));
    const ended = steps(log).filter((s) => s.kind === 'end').map((s) => s.name).sort();
    expect(ended).toEqual(['tr0', 'tr1']);
    expect(await daemon.stop()).toBe(0);
  }, 60_000);

  it('wait returns once a device is present and processed, and with --removed once it is gone', async () => {
    const { netns, daemon, log } = await setup('wait', `rules:
  - name: slow-add
    match: { action: add, subsystem: net, kernel: "wt*" }
    run: [${STEP('$kernel', 500)}]
`);
    const waiting = daemon.cli(netns, 'wait', '/sys/class/net/wt0', '--timeout', '20s');
    await new Promise((resolve) => setTimeout(resolve, 300));
    netns.ip('link', 'add', 'wt0', 'type', 'veth', 'peer', 'name', 'wt1');
    const result = await waiting;
    expect(result.code, result.stderr).toBe(0);
    expect(steps(log).some((s) => s.kind === 'end' && s.name === 'wt0')).toBe(true);
    const gone = daemon.cli(netns, 'wait', `${NET}/wt1`, '--removed', '--timeout', '20s');
    netns.ip('link', 'del', 'wt0');
    expect((await gone).code).toBe(0);
    const timedOut = await daemon.cli(netns, 'wait', '/sys/class/net/never0', '--timeout', '300ms');
    expect(timedOut.code).toBe(1);
    expect(timedOut.stderr).toMatch(/never0 was not present and processed within 300 ms/);
    expect(await daemon.stop()).toBe(0);
  }, 60_000);

  it('bounds an event with its time budget: the program is stopped and later events of the device go on', async () => {
    const { netns, daemon, log } = await setup('budget', `rules:
  - name: hangs
    match: { action: add, subsystem: net, kernel: bu0 }
    run: [{ argv: ["/bin/sleep", "30"], timeout: 60s }]
  - name: after
    match: { action: change, subsystem: net, kernel: bu0 }
    run: [${STEP('$kernel', 0)}]
`, ['--event-timeout', '1s']);
    const started = Date.now();
    netns.ip('link', 'add', 'bu0', 'type', 'veth', 'peer', 'name', 'bu1');
    netns.writeUevents('/sys/class/net/bu0/uevent', 'change', 1);
    expect((await daemon.cli(netns, 'settle', '--timeout', '20s')).code).toBe(0);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(steps(log).map((s) => `${s.kind} ${s.name}`)).toEqual(['start bu0', 'end bu0']);
    expect(daemon.logs.some((l) => l.msg === 'The event used up its time budget; its programs were stopped' && l.devpath === `${NET}/bu0`)).toBe(true);
    expect(await daemon.stop()).toBe(0);
  }, 60_000);
});
