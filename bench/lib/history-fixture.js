// A history of N events spread over 30 days and 1,000 USB devices, recorded through the
// daemon's own writer (batched commits, device identities, rule matches, actions) from the
// recorded kernel events of ../shared/fixtures/uevents: for the benchmarks that query it.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { HistoryWriter } from '../../dist/history/writer.js';
import { usbDevicePath } from '../../dist/history/devices.js';
import { createProperties, eventFromProperties } from '../../dist/uevent/event.js';
import { REPO } from './system.js';

export const DEVICES = 1000;

const rule = (name, file, line, text) => ({ name, at: { file, line, column: 1 }, text, conditions: [], assignments: [], stop: false, actions: undefined, subsystems: undefined });
// What Debian's rules match for nearly every event (their guards: `SUBSYSTEM!="block", GOTO=...`),
// a rule of ours for every third event, and one that matches once in 10,000.
const GUARDS = Array.from({ length: 23 }, (_, i) => rule(`${50 + i}-debian.rules:4`, `/usr/lib/udev/rules.d/${50 + i}-debian.rules`, 4, `SUBSYSTEM!="x${i}", GOTO="x${i}_end"`));
export const USB_SERIAL = rule('usb-serial', '/etc/hotplugd/rules.d/50-usb.yaml', 3, '- name: usb-serial');
export const RARE = rule('rare', '/etc/hotplugd/rules.d/90-rare.yaml', 3, '- name: rare');
const MATCHED = [GUARDS, [...GUARDS, USB_SERIAL], [...GUARDS, RARE]];
export const SPAN_MS = 30 * 86_400_000;

export function eventTemplates() {
  const fixtures = join(REPO, '..', 'shared', 'fixtures', 'uevents');
  return readdirSync(fixtures)
    .filter((f) => f.endsWith('.json'))
    .flatMap((f) => JSON.parse(readFileSync(join(fixtures, f), 'utf8')).events ?? [])
    .filter((e) => e.layer === 'kernel' && e.env_in_source && e.env.DEVPATH && e.env.SUBSYSTEM && e.env.ACTION);
}

/**
 * The `i`th of `events` fixture events from `start` on, as the daemon hands it to the history:
 * the event, the rules that matched it (23 guards of Debian's files each time, usb-serial
 * every third, rare once in 10,000) and its physical device. A device's
 * events come together (a plug sequence), as on a board.
 */
export function fixtureEvent(templates, i, events, start) {
  const template = templates[i % templates.length];
  const properties = createProperties();
  for (const [key, value] of Object.entries(template.env)) properties[key] = value;
  properties.SEQNUM = String(i + 1);
  const event = eventFromProperties(properties, start + Math.floor((i * SPAN_MS) / events), 'kernel');
  const usbPath = usbDevicePath(event.devpath);
  const n = Math.floor(i / templates.length) % DEVICES;
  const device = usbPath
    ? { key: `usb:0781:5583:SERIAL${n}`, subsystem: 'usb', devpath: usbPath, vendorId: '0781', productId: '5583', serial: `SERIAL${n}` }
    : { key: `${event.subsystem}:${event.devpath}`, subsystem: event.subsystem, devpath: event.devpath };
  return { event, rules: MATCHED[i % 10_000 === 5 ? 2 : i % 3 === 0 ? 1 : 0], device };
}

/** Records one fixture event (and, when a rule matched, its symlink action) through `writer`. */
export function recordFixtureEvent(writer, { event, rules, device }) {
  const id = writer.recordEvent(event, { rules, device });
  if (rules.includes(USB_SERIAL)) writer.recordAction(id, { kind: 'symlink', target: '/dev/serial/by-id/x', rule: 'usb-serial (/etc/hotplugd/rules.d/50-usb.yaml:5:7)', ok: true, error: null, durationMs: 0.2 });
}

/** Records `events` events ending at `end` into the open history `db`; returns the seconds it took (flushed). */
export function fillHistory(db, events, end = Date.now()) {
  const templates = eventTemplates();
  const writer = new HistoryWriter(db);
  const start = end - SPAN_MS;
  const started = process.hrtime.bigint();
  for (let i = 0; i < events; i++) recordFixtureEvent(writer, fixtureEvent(templates, i, events, start));
  writer.flush();
  return Number(process.hrtime.bigint() - started) / 1e9;
}
