// Reloading rules while real kernel events stream in: nothing is lost, every event is
// evaluated against exactly one rule set, and a broken set never replaces a working one.
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { CLI, canUseNamespaces, countEvents, startRuleDaemon, waitFor } from '../helpers/netns.js';

const run = promisify(execFile);
const LO = '/devices/virtual/net/lo';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0).reverse()) cleanup();
});

const rulesFor = (version: string) => `rules:
  - name: storm-${version}
    match: { action: change, subsystem: net, kernel: lo }
    set: { tags: [${version}] }
`;

async function reload(controlPath: string): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, 'reload', '--control', controlPath]);
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** A daemon in a fresh namespace whose rules directory is watched, with storm-v1 in its one rule file. */
async function startWatchedDaemon(prefix: string) {
  const { netns, daemon, dir } = await startRuleDaemon(prefix, cleanups, rulesFor('v1'), [], undefined, [], true);
  return { netns, daemon, file: join(dir, 'rules.d', '10-test.yaml') };
}

describe.skipIf(!canUseNamespaces())('rule reload', () => {
  it('during a storm of real kernel events loses nothing and evaluates each event against one set', async () => {
    const { netns, file, daemon } = await startWatchedDaemon('reload');

    // The storm runs until every reload below is done.
    const storm = netns.startUevents('/sys/class/net/lo/uevent', 'change');
    cleanups.push(() => storm.child.kill('SIGKILL'));

    // An event evaluated with the given version's rule (the daemon logs matches at debug).
    const seen = (version: string) => waitFor(
      () => daemon.logs.some((l) => l.msg === 'Rules matched' && (l.matched as string[])[0] === `storm-${version}`),
      20_000,
      `an event matched by storm-${version}`,
    );
    await seen('v1');

    // v2 through the control socket, a broken v3 refused, v4 through SIGHUP, v5 through the watch.
    writeFileSync(file, rulesFor('v2'));
    const good = await reload(daemon.controlPath);
    expect(good).toMatchObject({ code: 0, stdout: expect.stringMatching(/^Rules reloaded: 1 rules from 1 files \(version \d+\)\n$/) });
    await seen('v2');

    writeFileSync(file, `${rulesFor('v3')}    set: { mode: "bad" }\n`);
    const broken = await reload(daemon.controlPath);
    expect(broken.code).toBe(1);
    expect(broken.stderr).toContain(`${file}:5:`);
    expect(broken.stderr).toContain('the previous rules stay in use');

    writeFileSync(file, rulesFor('v4'));
    daemon.signal('SIGHUP');
    await waitFor(() => daemon.logs.some((l) => l.msg === 'Rules reloaded' && l.reason === 'SIGHUP'), 10_000, 'SIGHUP reload');
    await seen('v4');
    // Nothing but the directory watch can bring v5 in.
    writeFileSync(file, rulesFor('v5'));
    await seen('v5');

    const written = await storm.stop();
    expect(written).toBeGreaterThan(100);
    const lo = () => countEvents(daemon.dbPath, "devpath = ? AND action = 'change'", LO);
    await waitFor(() => lo() >= written, 60_000, `${written} recorded events`);
    expect(await daemon.stop()).toBe(0);
    expect(lo()).toBe(written);

    // One "Rules matched" line per event, naming one rule; versions only move forward.
    const matched = daemon.logs.filter((l) => l.msg === 'Rules matched' && l.devpath === LO);
    expect(matched).toHaveLength(written);
    const versions = matched.sort((a, b) => (a.seqnum as number) - (b.seqnum as number)).map((l) => l.matched as string[]);
    for (const names of versions) expect(names).toHaveLength(1);
    const order = versions.map((names) => Number(names[0]!.slice('storm-v'.length)));
    expect(order.includes(3)).toBe(false);
    for (let i = 1; i < order.length; i++) expect(order[i]!).toBeGreaterThanOrEqual(order[i - 1]!);
    // Events were evaluated with v1, v2, v4 and v5 (v3 was refused): the reloads happened mid-storm.
    expect([...new Set(order)]).toEqual([1, 2, 4, 5]);
    expect(daemon.logs.some((l) => l.msg.startsWith('Failed to reload rules'))).toBe(true);
  }, 120_000);

  it('does not let the directory watch replace working rules with a file caught mid-write', async () => {
    const { netns, file, daemon } = await startWatchedDaemon('midwrite');
    const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
    // The rule the latest change event of lo matched.
    const latestMatch = async (): Promise<string | undefined> => {
      const before = daemon.logs.length;
      const recorded = countEvents(daemon.dbPath, "devpath = ? AND action = 'change'", LO);
      netns.writeUevents('/sys/class/net/lo/uevent', 'change', 1);
      await waitFor(() => countEvents(daemon.dbPath, "devpath = ? AND action = 'change'", LO) > recorded, 10_000, 'the event recorded');
      await sleep(200); // its log lines follow on stderr
      const line = daemon.logs.slice(before).find((l) => l.msg === 'Rules matched' && l.devpath === LO);
      return line ? (line.matched as string[])[0] : undefined;
    };
    expect(await latestMatch()).toBe('storm-v1');

    // An editor's save: truncate, then the new text 0.4 s later, in two writes.
    writeFileSync(file, '');
    await sleep(400);
    writeFileSync(file, rulesFor('v2').slice(0, 40));
    await sleep(400);
    writeFileSync(file, rulesFor('v2'));
    await waitFor(() => daemon.logs.some((l) => l.msg === 'Rules reloaded' && l.reason === 'watch'), 10_000, 'the watch reload');
    expect(await latestMatch()).toBe('storm-v2');

    // A file left empty for longer than the watch waits: the rules in use stay, with a warning.
    writeFileSync(file, '');
    await waitFor(() => daemon.logs.some((l) => typeof l.msg === 'string' && l.msg.includes('is empty now (caught mid-write?)')), 10_000, 'the warning');
    expect(await latestMatch()).toBe('storm-v2');
    writeFileSync(file, rulesFor('v3'));
    await waitFor(() => daemon.logs.filter((l) => l.msg === 'Rules reloaded' && l.reason === 'watch').length === 2, 10_000, 'the second watch reload');
    expect(await latestMatch()).toBe('storm-v3');

    // Never an empty set, never a refused one in between: the watch saw only whole files.
    const reloads = daemon.logs.filter((l) => l.msg === 'Rules reloaded');
    expect(reloads.map((l) => l.rules)).toEqual([1, 1]);
    expect(daemon.logs.some((l) => l.msg.startsWith('Failed to reload rules'))).toBe(false);
  }, 60_000);
});
