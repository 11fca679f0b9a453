// udev's database as hotplugd writes it: what rules added (E:), links (S:), tags (G:/Q:),
// and nothing that lives for the event only.
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { evaluate } from '../engine/evaluate.js';
import { compileUdevRules } from '../frontends/udev/compile.js';
import { staticAccounts } from '../os/accounts.js';
import { RuleSet } from '../rules/ruleset.js';
import { createProperties, eventFromProperties } from '../uevent/event.js';
import type { Sysfs } from '../uevent/sysfs.js';
import { UdevDatabase } from './database.js';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function inputEvent(action: string, at = Date.now()) {
  const properties = Object.assign(createProperties(), {
    ACTION: action, DEVPATH: '/devices/virtual/input/input5/event4', SUBSYSTEM: 'input', DEVNAME: 'input/event4', MAJOR: '13', MINOR: '68', SEQNUM: '7',
  });
  return eventFromProperties(properties, at, 'kernel');
}

describe('udev database', () => {
  it('stores what the rules added, never hidden (dot) properties', () => {
    const root = mkdtempSync(join(tmpdir(), 'hotplugd-udevdb-'));
    dirs.push(root);
    const { rules, diagnostics } = compileUdevRules(
      'ENV{.INPUT_CLASS}="kbd", ENV{ID_INPUT}="1", SYMLINK+="input/by-id/usb-kbd-$env{.INPUT_CLASS}", TAG+="seat"\n',
      '60-test.rules',
      staticAccounts({ root: 0 }, { root: 0 }),
    );
    expect(diagnostics).toEqual([]);
    const event = inputEvent('add');
    const { plan } = evaluate(new RuleSet(rules), { event, device: undefined, devRoot: '/dev' }, () => undefined);
    const db = new UdevDatabase(root);
    db.update(event, plan);
    const text = readFileSync(join(root, 'data/c13:68'), 'utf8');
    expect(text).toMatch(/^S:input\/by-id\/usb-kbd-kbd$/m);
    expect(text).toMatch(/^E:ID_INPUT=1$/m);
    expect(text).not.toMatch(/INPUT_CLASS/);
    expect(text).toMatch(/^G:seat$/m);
    expect(db.properties(event.devpath)).toEqual({ ID_INPUT: '1' });
  });

  it('writes a device\'s file again only when it changes, or when it went meanwhile', () => {
    const root = mkdtempSync(join(tmpdir(), 'hotplugd-udevdb-'));
    dirs.push(root);
    const { rules } = compileUdevRules('ENV{ID_INPUT}="1", TAG+="seat"\n', '60-test.rules', staticAccounts({ root: 0 }, { root: 0 }));
    const ruleSet = new RuleSet(rules);
    const db = new UdevDatabase(root);
    const file = join(root, 'data/c13:68');
    const tag = join(root, 'tags/seat/c13:68');
    const t0 = Date.now();
    const update = (action: string, at = t0) => db.update(inputEvent(action, at), evaluate(ruleSet, { event: inputEvent(action, at), device: undefined, devRoot: '/dev' }, () => undefined).plan);
    update('add');
    appendFileSync(file, '# not written since\n');
    update('change');
    update('change');
    expect(readFileSync(file, 'utf8')).toMatch(/^I:\d+\nE:ID_INPUT=1\nG:seat\nQ:seat\nV:1\n# not written since\n$/);
    rmSync(file);
    rmSync(tag);
    // Looked for again once a second: a storm does not pay for a look per event.
    update('change', t0 + 500);
    expect(existsSync(file)).toBe(false);
    update('change', t0 + 1500);
    expect(readFileSync(file, 'utf8')).toMatch(/^I:\d+\nE:ID_INPUT=1\n/);
    expect(existsSync(tag)).toBe(true);
  });

  it('gives a remove event what the device had: its properties, links and tags, before the rules (index included)', () => {
    const root = mkdtempSync(join(tmpdir(), 'hotplugd-udevdb-'));
    dirs.push(root);
    const { rules, diagnostics } = compileUdevRules(
      [
        'ACTION=="add", ENV{ID_FS_UUID}="3f1a", SYMLINK+="disk/by-uuid/3f1a", TAG+="systemd"',
        'ACTION=="remove", ENV{ID_FS_UUID}=="3f1a", ENV{SEEN_ON_REMOVE}="$env{ID_FS_UUID}"',
      ].join('\n'),
      '60-test.rules',
      staticAccounts({ root: 0 }, { root: 0 }),
    );
    expect(diagnostics).toEqual([]);
    const set = new RuleSet(rules);
    const db = new UdevDatabase(root);
    const add = inputEvent('add');
    db.update(add, evaluate(set, { event: add, device: undefined, devRoot: '/dev', database: db }, () => undefined).plan);
    const remove = inputEvent('remove');
    // The daemon's path (the rule index) and the dry run's (every rule) alike.
    for (const trace of ['matched', 'all'] as const) {
      const { plan } = evaluate(set, { event: remove, device: undefined, devRoot: '/dev', database: db, trace }, () => undefined);
      expect(plan.properties).toMatchObject({ ID_FS_UUID: '3f1a', SEEN_ON_REMOVE: '3f1a', DEVLINKS: '/dev/disk/by-uuid/3f1a', TAGS: ':systemd:', CURRENT_TAGS: ':systemd:' });
    }
    // The kernel's event itself is left as it came.
    expect(remove.properties.ID_FS_UUID).toBeUndefined();
    db.update(remove, undefined);
    expect(db.properties(remove.devpath)).toBeUndefined();
  });

  it('finds a file an earlier run left by the event\'s own id, reading no sysfs; a remove carries it', () => {
    const root = mkdtempSync(join(tmpdir(), 'hotplugd-udevdb-'));
    dirs.push(root);
    const { rules } = compileUdevRules('ACTION=="remove", ENV{ID_FS_UUID}=="3f1a", ENV{SEEN_ON_REMOVE}="yes"\n', '60-test.rules', staticAccounts({ root: 0 }, { root: 0 }));
    const earlier = new UdevDatabase(root);
    earlier.update(inputEvent('add'), { ...evaluate(new RuleSet([]), { event: inputEvent('add'), device: undefined, devRoot: '/dev' }, () => undefined).plan, properties: { ID_FS_UUID: '3f1a' }, tags: ['seat'] });
    let sysfsReads = 0;
    const sysfs = { synthesizeEvent: () => { sysfsReads++; return undefined; } } as unknown as Sysfs;
    const db = new UdevDatabase(root, { sysfs });
    const remove = inputEvent('remove');
    const { plan } = evaluate(new RuleSet(rules), { event: remove, device: undefined, devRoot: '/dev', database: db }, () => undefined);
    expect(plan.properties).toMatchObject({ ID_FS_UUID: '3f1a', SEEN_ON_REMOVE: 'yes', TAGS: ':seat:' });
    const add = inputEvent('add');
    const tagged = evaluate(new RuleSet([]), { event: add, device: undefined, devRoot: '/dev', database: db }, () => undefined).plan;
    db.update(add, tagged);
    expect(tagged.properties.TAGS).toBe(':seat:');
    expect(sysfsReads).toBe(0);
  });
});
