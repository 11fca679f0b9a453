// The forwarded payloads follow schema/forward.schema.json: built from a real history (an
// event with its actions, a later result, an incident) as the forwarder builds them.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Ajv2020 from 'ajv/dist/2020.js';
import { afterEach, describe, expect, it } from 'vitest';
import { ruleFromLabel } from '../../test/helpers/rule.js';
import { openHistoryDb } from '../history/db.js';
import { readOutbox } from '../history/outbox.js';
import { HistoryWriter } from '../history/writer.js';
import { createProperties, eventFromProperties } from '../uevent/event.js';
import { boardNameProblem } from './broker.js';
import { recordOf } from './forward.js';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const schema = JSON.parse(readFileSync(new URL('../../schema/forward.schema.json', import.meta.url), 'utf8')) as object;
const validate = new Ajv2020.default({ allErrors: true, strict: false }).compile(schema);

describe('forwarded payloads', () => {
  it('follow the JSON Schema, each stream chained from its cursor', () => {
    const dir = mkdtempSync(join(tmpdir(), 'hotplugd-forward-'));
    dirs.push(dir);
    const db = openHistoryDb(join(dir, 'h.db'));
    const writer = new HistoryWriter(db);
    const properties = Object.assign(createProperties(), { ACTION: 'add', DEVPATH: '/devices/virtual/net/eth9', SUBSYSTEM: 'net', INTERFACE: 'eth9' });
    const first = writer.recordEvent(eventFromProperties(properties, Date.now(), 'kernel'), { rules: [ruleFromLabel('dhcp (a.yaml:2:5)')] });
    writer.recordAction(first, { kind: 'job-start', target: '/sbin/udhcpc', rule: 'dhcp (a.yaml:5:11)', ok: true, error: null, durationMs: 1 });
    const second = writer.recordEvent(eventFromProperties({ ...properties, ACTION: 'change' }, Date.now(), 'kernel'), {});
    writer.recordIncident({ kind: 'seqnum-gap', at: Date.now(), detail: { missed: 3 } });
    writer.flush();
    const sent = readOutbox(db, { eventId: 0, actionId: 0, incidentId: 0 }, 100);
    expect(sent.map((i) => `${i.stream} ${i.id} after ${i.after}`)).toEqual(['incident 1 after 0', `event ${first} after 0`, `event ${second} after ${first}`]);
    // The job's result, recorded later, comes as a result once its event is acknowledged.
    writer.recordAction(first, { kind: 'job-exit', target: '/sbin/udhcpc', rule: 'dhcp (a.yaml:5:11)', ok: false, error: 'exit code 1', durationMs: 5 });
    writer.flush();
    const later = readOutbox(db, { eventId: second, actionId: 0, incidentId: 1 }, 100);
    expect(later.map((i) => `${i.stream} ${i.id} after ${i.after}`)).toEqual(['action 1 after 0', 'action 2 after 1']);
    for (const item of [...sent, ...later]) {
      // One record on its own, as boards before batches sent it (collectors still take it).
      const payload = JSON.parse(JSON.stringify(recordOf(item, 'board-1'))) as unknown;
      expect(validate(payload), JSON.stringify(validate.errors)).toBe(true);
    }
    // As boards send them now: many records in one message.
    const batch = { type: 'batch', board: 'board-1', records: [...sent, ...later].map((item) => recordOf(item, 'board-1')) };
    expect(validate(JSON.parse(JSON.stringify(batch))), JSON.stringify(validate.errors)).toBe(true);
    expect(validate({ ...batch, records: [] })).toBe(false);
    expect(validate({ type: 'event', board: 'a/b', id: 1, after: 0 })).toBe(false);
    db.close();
  });
  it('refuse board names that are not one topic level', () => {
    for (const bad of ['', 'a/b', 'a+', '#', 'a\0b', 'x'.repeat(129)]) expect(boardNameProblem(bad)).toBeDefined();
    expect(boardNameProblem('board-17.site_a')).toBeUndefined();
  });
});
