// The pipeline's stages end to end with a fake source (no root, no kernel): events are
// ordered per device, reading pauses on a full queue and resumes, lost events are resynced
// from sysfs, incidents and later results reach the history and the subscribers.
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { buildFakeSysfs, type FakeSysfs } from '../../test/helpers/fake-sysfs.js';
import { ActionExecutor } from '../actions/execute.js';
import { EvaluationContext } from '../engine/context.js';
import { compileYamlRules } from '../frontends/yaml.js';
import { listEvents, listIncidents, type IncidentLine, type ProcessedRecord, type ResultRecord } from '../history/records.js';
import { DEFAULT_RETENTION } from '../history/retention.js';
import { HistoryService } from '../history/service.js';
import { createLogger } from '../log.js';
import { staticAccounts } from '../os/accounts.js';
import { RuleSet } from '../rules/ruleset.js';
import { createProperties, eventFromProperties, type Uevent } from '../uevent/event.js';
import { Pipeline } from './pipeline.js';
import type { EventSources, SourceCounters, SourceSink } from './sources.js';

const ACCOUNTS = staticAccounts({ root: 0 }, { root: 0 });

/** Datagrams the "kernel" has sent, read as the real sources read: only while not paused and the queue has room. */
class FakeSources implements EventSources {
  sink: SourceSink | undefined;
  buffered: Uevent[] = [];
  reading = false;
  pauses = 0;
  resumes = 0;
  open(sink: SourceSink): void {
    this.sink = sink;
  }
  start(_snapshot: boolean, read: boolean): void {
    this.reading = read;
    this.#deliver();
  }
  pause(): void {
    this.pauses++;
    this.reading = false;
  }
  resume(): void {
    this.resumes++;
    this.reading = true;
    this.#deliver();
  }
  readNow(): number {
    return this.#deliver();
  }
  close(): void {
    this.reading = false;
  }
  receiveBufferBytes(): number {
    return 1 << 20;
  }
  enobufs(): number {
    return 0;
  }
  counters(): SourceCounters {
    return { received: 0, accepted: 0, forged: 0, malformed: 0, malformedByReason: undefined, enobufs: 0, linkMessages: 0, linkChanges: 0, linkForged: 0, linkMalformed: 0, linkEnobufs: 0, linkResyncs: 0, linksKnown: 0 };
  }
  /** The kernel sends a uevent. */
  send(event: Uevent): void {
    this.buffered.push(event);
    this.#deliver();
  }
  /** The kernel reports ENOBUFS: events were lost. */
  overflow(): void {
    this.sink!.intake.onOverflow(1);
  }
  #deliver(): number {
    let read = 0;
    while (this.reading && this.buffered.length > 0 && this.sink!.room() > 0) {
      this.sink!.intake.accept(this.buffered.shift()!);
      read++;
    }
    return read;
  }
}

const devpathOf = (name: string) => `/devices/virtual/misc/${name}`;

function uevent(action: string, name: string, seqnum: number): Uevent {
  const properties = Object.assign(createProperties(), { ACTION: action, DEVPATH: devpathOf(name), SUBSYSTEM: 'misc', SEQNUM: String(seqnum) });
  return eventFromProperties(properties, Date.now(), 'kernel');
}

function addDevice(sysfs: FakeSysfs, name: string): void {
  const dir = join(sysfs.root, devpathOf(name));
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'uevent'), '');
  symlinkSync('../../../class/misc', join(dir, 'subsystem'));
}

/** What subscribers heard, in order. */
class Heard {
  events: ProcessedRecord[] = [];
  results: ResultRecord[] = [];
  incidents: IncidentLine[] = [];
  readonly size = 1;
  readonly dropped = 0;
  readonly heldBytes = 0;
  publish(record: ProcessedRecord): void {
    this.events.push(record);
  }
  publishResult(result: ResultRecord): void {
    this.results.push(result);
  }
  publishIncident(line: IncidentLine): void {
    this.incidents.push(line);
  }
  names(): string[] {
    return this.events.map((e) => `${e.action} ${e.devpath.split('/').pop()}`);
  }
}

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0).reverse()) cleanup();
});

async function pipelineWith(rulesYaml: string, options: { capacity?: number; devices?: string[] } = {}) {
  const sysfs = buildFakeSysfs({});
  cleanups.push(() => sysfs.remove());
  mkdirSync(join(sysfs.root, 'class/misc'), { recursive: true });
  for (const name of options.devices ?? []) addDevice(sysfs, name);
  const dir = mkdtempSync(join(tmpdir(), 'hotplugd-pipeline-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const log = await createLogger('silent', 'json');
  const { rules, diagnostics } = compileYamlRules(rulesYaml, 'test.yaml', ACCOUNTS);
  expect(diagnostics).toEqual([]);
  const ruleSet = new RuleSet(rules);
  const context = new EvaluationContext({ sysfsRoot: sysfs.root, devRoot: join(dir, 'dev'), databaseDir: undefined, accounts: ACCOUNTS });
  const executor = new ActionExecutor({ devRoot: join(dir, 'dev'), sysfs: context.sysfs });
  const history = new HistoryService({ path: join(dir, 'history.db'), log, sysfs: context.sysfs, retention: DEFAULT_RETENTION });
  cleanups.push(() => history.close());
  const sources = new FakeSources();
  const pipeline = new Pipeline({
    sources,
    worker: { context, dryRun: false, rules: () => ruleSet, executor, log, eventTimeoutMs: 10_000 },
    recorder: { writer: history.writer, identities: history.identities, log, canRecord: () => true },
    executor,
    sysfs: context.sysfs,
    log,
    capacity: options.capacity ?? 1000,
    maxEvents: 8,
    dryRun: false,
  });
  cleanups.push(() => pipeline.close());
  history.reportIncidentsTo((incident) => pipeline.reportIncident(incident), (incident) => pipeline.publishIncident(incident));
  const heard = new Heard();
  pipeline.publishTo({ metrics: { observe: () => undefined, observeAction: () => undefined }, subscribers: heard, waiters: { check: () => undefined } });
  pipeline.open();
  pipeline.start(false);
  const recorded = () => {
    history.writer.flush();
    return { events: listEvents(history.db), incidents: listIncidents(history.db) };
  };
  return { pipeline, sources, heard, sysfs, recorded };
}

async function until(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('Pipeline', () => {
  it("orders events per device: a device's change waits for its slow add, another device goes ahead", async () => {
    const { pipeline, sources, heard, recorded } = await pipelineWith(
      'rules:\n  - match: { action: add, kernel: v0 }\n    run: [["/bin/sleep", "0.3"]]\n',
    );
    sources.send(uevent('add', 'v0', 1));
    sources.send(uevent('change', 'v0', 2));
    sources.send(uevent('add', 'v1', 3));
    expect(await pipeline.settle(5000)).toBe(true);
    expect(heard.names()).toEqual(['add v1', 'add v0', 'change v0']);
    const { events } = recorded();
    expect(events.map((e) => e.seqnum)).toEqual([3, 1, 2]);
    expect(heard.events.find((e) => e.devpath === devpathOf('v0') && e.action === 'add')?.rules).toEqual([expect.stringContaining('test.yaml')]);
  });

  it('pauses reading when the queue is full and resumes as it drains, losing nothing', async () => {
    const { pipeline, sources, heard, recorded } = await pipelineWith('rules: []\n', { capacity: 4 });
    pipeline.hold(true);
    for (let seqnum = 1; seqnum <= 20; seqnum++) sources.send(uevent('add', `v${seqnum}`, seqnum));
    expect(pipeline.stats().queued).toBe(4);
    expect(sources.buffered.length).toBe(16);
    expect(sources.pauses).toBe(1);
    pipeline.hold(false);
    await until(() => heard.events.length === 20);
    expect(sources.resumes).toBeGreaterThanOrEqual(1);
    expect(pipeline.stats().readPauses).toBeGreaterThanOrEqual(1);
    expect(sources.buffered).toEqual([]);
    expect(heard.events.map((e) => e.seqnum)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect(recorded().events.length).toBe(20);
  });

  it('after an overflow, resyncs from sysfs and reports the incident to the history and subscribers', async () => {
    const { pipeline, sources, heard, sysfs, recorded } = await pipelineWith('rules: []\n', { devices: ['v0', 'v1'] });
    // While events were lost, v1 went and v2 came.
    rmSync(join(sysfs.root, devpathOf('v1')), { recursive: true });
    addDevice(sysfs, 'v2');
    sources.overflow();
    await until(() => heard.events.length === 2);
    expect(await pipeline.settle(5000)).toBe(true);
    expect(heard.names().sort()).toEqual(['add v2', 'remove v1']);
    expect(heard.events.every((e) => e.source === 'resync')).toBe(true);
    expect(heard.incidents.map((line) => line.incident)).toEqual([expect.objectContaining({ kind: 'overflow', detail: expect.objectContaining({ enobufsReports: 1, resyncAdded: 1, resyncRemoved: 1 }) })]);
    const { incidents, events } = recorded();
    expect(incidents.map((i) => i.kind)).toEqual(['overflow']);
    expect(events.map((e) => e.action).sort()).toEqual(['add', 'remove']);
  });

  it('reports a SEQNUM gap as an incident as it happens', async () => {
    const { pipeline, sources, heard, recorded } = await pipelineWith('rules: []\n');
    sources.send(uevent('add', 'v0', 10));
    sources.send(uevent('add', 'v1', 15));
    expect(await pipeline.settle(5000)).toBe(true);
    expect(heard.incidents.map((line) => line.incident)).toEqual([expect.objectContaining({ kind: 'seqnum-gap', detail: expect.objectContaining({ after: 10, before: 15, missed: 4, duringOverflow: false }) })]);
    expect(recorded().incidents.map((i) => i.kind)).toEqual(['seqnum-gap']);
  });

  it("publishes results that come later against their event: a debounced rule's turn, and its cancellation", async () => {
    const { pipeline, sources, heard, recorded } = await pipelineWith(
      'rules:\n  - match: { action: change, kernel: [v0, v1] }\n    debounce: 50ms\n    run: [["/bin/true"]]\n',
    );
    sources.send(uevent('change', 'v0', 1));
    sources.send(uevent('change', 'v1', 2));
    expect(await pipeline.settle(5000)).toBe(true);
    // v1 changes again within the window: its first change's debounced rule is cancelled.
    sources.send(uevent('change', 'v1', 3));
    await until(() => heard.events.filter((e) => e.source === 'debounce').length === 2);
    expect(await pipeline.settle(5000)).toBe(true);
    const debounceResults = heard.results.filter((r) => (r.result as { kind: string }).kind === 'debounce');
    const firstIds = Object.fromEntries(heard.events.filter((e) => e.source === 'kernel').map((e) => [e.seqnum, e.id]));
    expect(debounceResults).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ event_id: firstIds[1], result: expect.objectContaining({ ok: true }) }),
        expect.objectContaining({ event_id: firstIds[2], result: expect.objectContaining({ ok: false, error: expect.stringContaining('cancelled') }) }),
        expect.objectContaining({ event_id: firstIds[3], result: expect.objectContaining({ ok: true }) }),
      ]),
    );
    const turns = heard.events.filter((e) => e.source === 'debounce');
    expect(turns.map((e) => e.devpath).sort()).toEqual([devpathOf('v0'), devpathOf('v1')]);
    const events = recorded().events;
    expect(events.filter((e) => e.source === 'debounce').length).toBe(2);
  });
});
