#!/usr/bin/env node
// Rule evaluation benchmark: recorded USB events (../shared/fixtures/uevents) evaluated
// against a fake sysfs tree of the same devices, with the shipped rules and with 10, 100,
// 1,000 and 10,000 generated rules. As in the daemon, each event's own device is read afresh and its
// ancestors come from a cache that drops a device when it gets an event. Prints a Markdown table and writes bench/results/rules.json.
// Usage: npm run bench:rules [-- --seconds S]
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import { evaluate } from '../dist/engine/evaluate.js';
import { loadRules } from '../dist/frontends/load.js';
import { createProperties, eventFromProperties } from '../dist/uevent/event.js';
import { Sysfs } from '../dist/uevent/sysfs.js';
import { AncestorCache } from '../dist/uevent/ancestors.js';
import { printAndSave } from './lib/report.js';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '3' } } });
const SECONDS = Number(values.seconds);
const RULE_COUNTS = (process.env.RULE_COUNTS ?? "10,100,1000,10000").split(",").map(Number);
const REPO = new URL('..', import.meta.url).pathname;
const FIXTURES = join(REPO, '..', 'shared', 'fixtures', 'uevents');

const fixtures = readdirSync(FIXTURES)
  .filter((f) => f.endsWith('.json'))
  .map((f) => JSON.parse(readFileSync(join(FIXTURES, f), 'utf8')));

// The fixtures' sysfs layouts written out as a tree (attributes, subsystem and driver links).
function buildSysfs(root) {
  for (const fixture of fixtures) {
    for (const [devpath, entry] of Object.entries(fixture.sysfs ?? {})) {
      if (!devpath.startsWith('/devices')) continue;
      const dir = join(root, devpath);
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'uevent'), '');
      for (const [name, value] of Object.entries(entry)) {
        if (name.startsWith('_') || name === 'uevent') continue;
        mkdirSync(dirname(join(dir, name)), { recursive: true });
        writeFileSync(join(dir, name), `${value}\n`);
      }
      for (const [link, target] of [['subsystem', entry._subsystem && `bus/${entry._subsystem}`], ['driver', entry._driver && `bus/${entry._subsystem}/drivers/${entry._driver}`]]) {
        if (!target) continue;
        mkdirSync(join(root, target), { recursive: true });
        try {
          symlinkSync(relative(dir, join(root, target)), join(dir, link));
        } catch {
          // the same device appears in two fixtures
        }
      }
    }
  }
}

function recordedEvents() {
  const events = [];
  for (const fixture of fixtures) {
    for (const e of fixture.events) {
      if (e.layer !== 'kernel' || !e.action || !e.devpath || !e.subsystem) continue;
      const properties = Object.assign(createProperties(), { ACTION: e.action, DEVPATH: e.devpath, SUBSYSTEM: e.subsystem }, e.env);
      events.push(eventFromProperties(properties, 0, 'kernel'));
    }
  }
  return events;
}

// `count` rules in the shapes vendors ship: per-product USB permissions (most common),
// kernel-name globs per subsystem, and property matches with no subsystem (no index help).
function generatedRules(dir, count) {
  mkdirSync(dir, { recursive: true });
  const lines = ['rules:'];
  const subsystems = ['tty', 'block', 'net', 'input', 'hidraw', 'sound'];
  for (let i = 0; i < count; i++) {
    const id = (0x1000 + i).toString(16);
    if (i % 10 < 5) {
      lines.push(`  - name: usb-${i}`, '    match:', '      action: add', '      subsystem: usb',
        `      parent: { subsystem: usb, attrs: { idVendor: "${id}", idProduct: "${id}" } }`,
        '    set: { mode: "0660", group: root, symlink: "vendor/$attr{idVendor}-$kernel" }');
    } else if (i % 10 < 8) {
      lines.push(`  - name: glob-${i}`, '    match:', `      subsystem: ${subsystems[i % subsystems.length]}`,
        `      kernel: "x${id}*"`, '    set: { env: { MATCHED: "$kernel" } }');
    } else {
      lines.push(`  - name: env-${i}`, `    match: { env: { ID_VENDOR_ID: "${id}" } }`, '    set: { tags: [vendor] }');
    }
  }
  writeFileSync(join(dir, '50-generated.yaml'), `${lines.join('\n')}\n`);
  return dir;
}

function measure(ruleSet, sysfs, events) {
  // As the daemon does: ancestors' views shared across events, dropped when they get one.
  const ancestors = new AncestorCache(sysfs);
  const run = (n) => {
    let matched = 0;
    for (let i = 0; i < n; i++) {
      const event = events[i % events.length];
      ancestors.forget(event.devpath, event.action === 'remove' || event.action === 'move');
      const { plan } = evaluate(ruleSet, { event, device: sysfs.device(event.devpath, ancestors), fileExists: () => false, trace: 'matched' });
      matched += plan.symlinks.length + plan.tags.length + plan.run.length;
    }
    return matched;
  };
  run(100_000); // warm up the JIT, the index and the ancestor cache
  let evaluations = 0;
  let matched = 0;
  const started = process.hrtime.bigint();
  const deadline = started + BigInt(SECONDS * 1e9);
  while (process.hrtime.bigint() < deadline) {
    matched += run(5000);
    evaluations += 5000;
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return { evaluations, seconds, perSecond: Math.round(evaluations / seconds), actionsPerEvaluation: +(matched / evaluations).toFixed(2) };
}

const root = mkdtempSync(join(tmpdir(), 'hotplugd-bench-rules-'));
try {
  const sysfsRoot = join(root, 'sys');
  buildSysfs(sysfsRoot);
  const sysfs = new Sysfs(sysfsRoot);
  const events = recordedEvents();
  const results = [];
  const sets = [['shipped rules', [join(REPO, 'rules.d')]]];
  for (const count of RULE_COUNTS) sets.push([`${count.toLocaleString('en')} generated rules`, [generatedRules(join(root, `gen-${count}`), count)]]);
  for (const [label, dirs] of sets) {
    const loadStarted = performance.now();
    const { ruleSet, ok, diagnostics } = loadRules(dirs);
    const loadMs = Math.round(performance.now() - loadStarted);
    if (!ok) throw new Error(`rules did not load: ${JSON.stringify(diagnostics.slice(0, 3))}`);
    results.push({ label, rules: ruleSet.rules.length, loadMs, ...measure(ruleSet, sysfs, events) });
    console.error(`rules: ${label}: ${results.at(-1).perSecond} evaluations/s`);
  }
  const base = results[1];
  const markdown = `## Rule evaluation: ${events.length} recorded USB events from ${fixtures.length} fixtures, ${SECONDS} s per set

| rule set | rules | load ms | evaluations/s | cost vs ${base.rules} rules | links+tags+programs per event |
|---|---:|---:|---:|---:|---:|
${results.map((r) => `| ${r.label} | ${r.rules} | ${r.loadMs} | ${r.perSecond.toLocaleString('en')} | ${(base.perSecond / r.perSecond).toFixed(1)}× | ${r.actionsPerEvaluation} |`).join('\n')}

Rules are indexed at load time by action and subsystem, then each under one necessary condition
(an ancestor's exact attribute, a property's exact value while no earlier rule can have changed
it, or the kernel name's literal first character), so an event is tested against the rules that
can match it. The generated sets mix per-product USB rules, kernel-name globs per subsystem, and
property matches with no subsystem.`;
  printAndSave('rules', { markdown, json: { events: events.length, results } });
} finally {
  rmSync(root, { recursive: true, force: true });
}
