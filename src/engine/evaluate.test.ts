// The engine over a fake sysfs tree built from a real CH340 USB serial adapter's layout.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildFakeSysfs, type FakeSysfs } from '../../test/helpers/fake-sysfs.js';
import { loadUeventFixtures } from '../../test/helpers/fixtures.js';
import { createProperties, eventFromProperties } from '../uevent/event.js';
import { Sysfs } from '../uevent/sysfs.js';
import { staticAccounts } from '../os/accounts.js';
import { evaluate, type ImportRequest } from './evaluate.js';
import { RuleSet } from '../rules/ruleset.js';
import { machineView, type SystemView } from '../rules/system-view.js';
import { compileYamlRules } from '../frontends/yaml.js';

const ACCOUNTS = staticAccounts({ root: 0 }, { root: 0, dialout: 20 });
const USBDEV = '/devices/pci0000:00/0000:00:08.1/0000:04:00.3/usb1/1-2/1-2.2';
const IFACE = `${USBDEV}/1-2.2:1.0`;
const PORT = `${IFACE}/ttyUSB0`;
const TTY = `${PORT}/tty/ttyUSB0`;

let fake: FakeSysfs;
let sysfs: Sysfs;
beforeAll(() => {
  const fixture = loadUeventFixtures().find((f) => f.scenario === 'usb-serial-ch340');
  fake = buildFakeSysfs(fixture!.sysfs!);
  sysfs = new Sysfs(fake.root);
  writeFileSync(join(fake.root, USBDEV, 'manufacturer'), 'QinHeng Electronics \n');
  writeFileSync(join(fake.root, USBDEV, 'serial'), 'A1B2\n');
  writeFileSync(join(fake.root, USBDEV, 'uevent'), 'DEVTYPE=usb_device\nDEVNAME=bus/usb/001/031\n');
});
afterAll(() => fake.remove());

function rules(yaml: string): RuleSet {
  const { rules: compiled, diagnostics } = compileYamlRules(yaml, 'test.yaml', ACCOUNTS);
  expect(diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
  return new RuleSet(compiled);
}

function ttyEvent(action = 'add', extra: Record<string, string> = {}) {
  const properties = Object.assign(createProperties(), {
    ACTION: action, DEVPATH: TTY, SUBSYSTEM: 'tty', MAJOR: '188', MINOR: '0', DEVNAME: 'ttyUSB0', SEQNUM: '42', ...extra,
  });
  return eventFromProperties(properties, 0, 'kernel');
}

// The fake tree stands in for /sys; of the rest of the machine only /etc/present exists.
function fakeMachine(): SystemView {
  const real = machineView(fake.root);
  return { ...real, sysfsRoot: '/sys', mode: (p) => (p === '/etc/present' ? 0o100644 : p.startsWith('/sys/') ? real.mode(fake.root + p.slice(4)) : undefined) };
}

function run(yaml: string, event = ttyEvent(), runImport?: (r: ImportRequest) => { stdout: string } | undefined) {
  return evaluate(rules(yaml), { event, device: sysfs.device(event.devpath), devRoot: '/dev', system: fakeMachine() }, runImport);
}

/** The failed key of a one-rule set, or 'matched'. */
function outcome(match: string, event = ttyEvent()): string {
  const { trace } = run(`rules:\n  - name: r\n    match: ${match}\n`, event);
  return trace[0]?.matched ? 'matched' : (trace[0]?.failedKey ?? 'not a candidate');
}

describe('match keys', () => {
  const cases: [string, string][] = [
    ['{ action: add }', 'matched'],
    ['{ action: [change, remove] }', 'action'],
    ['{ action: "!remove" }', 'matched'],
    ['{ subsystem: tty }', 'matched'],
    ['{ subsystem: net }', 'subsystem'],
    ['{ subsystem: "t*" }', 'matched'],
    ['{ devtype: "" }', 'matched'],
    ['{ devtype: disk }', 'devtype'],
    ['{ kernel: "ttyUSB[0-9]" }', 'matched'],
    ['{ kernel: "ttyACM*" }', 'kernel'],
    ['{ devpath: "*/1-2.2:1.0/*" }', 'matched'],
    ['{ devpath: "/devices/platform/*" }', 'devpath'],
    ['{ devname: ttyUSB0 }', 'matched'],
    ['{ driver: "" }', 'matched'],
    ['{ driver: ch341 }', 'driver'],
    ['{ env: { MAJOR: "188", MINOR: "0" } }', 'matched'],
    ['{ env: { MAJOR: "189" } }', 'env.MAJOR'],
    ['{ env: { ID_BUS: "" } }', 'matched'],
    ['{ env: { ID_BUS: "!" } }', 'env.ID_BUS'],
    ['{ attrs: { "power/control": auto } }', 'matched'],
    ['{ attrs: { "power/control": "on" } }', 'attrs.power/control'],
    ['{ attrs: { idVendor: "1a86" } }', 'attrs.idVendor'],
    ['{ tags: "?*" }', 'tags'],
    ['{ tags: "!console" }', 'matched'],
    ['{ exists: "power/control" }', 'matched'],
    ['{ exists: "!power/control" }', 'exists !power/control'],
    ['{ exists: "nothing-here" }', 'exists nothing-here'],
    ['{ exists: /etc/present }', 'matched'],
    ['{ exists: /etc/absent }', 'exists /etc/absent'],
    ['{ parent: { subsystem: usb, attrs: { idVendor: "1a86", idProduct: "7523" } } }', 'matched'],
    ['{ parent: { subsystem: usb, attrs: { idVendor: "0403" } } }', 'parent'],
    ['{ parent: { kernel: "1-2.2:1.*", driver: ch341 } }', 'matched'],
    ['{ parent: { driver: ch341-uart, subsystem: usb-serial } }', 'matched'],
    ['{ parent: { subsystem: usb, driver: ch341-uart } }', 'parent'],
    ['{ parent: { devtype: usb_device } }', 'matched'],
    ['{ parent: { subsystem: tty, kernel: ttyUSB0 } }', 'matched'],
    ['{ parent: [{ subsystem: usb-serial }, { subsystem: pci }] }', 'parent'],
    ['{ subsystem: tty, kernel: "ttyUSB*", env: { MAJOR: "1" }, parent: { subsystem: usb } }', 'env.MAJOR'],
  ];
  it.each(cases)('%s → %s', (match, expected) => {
    expect(outcome(match)).toBe(expected);
  });

  it('matches tags set by earlier rules', () => {
    const { trace } = run(`rules:
  - set: { tags: [console] }
  - name: tagged
    match: { tags: console }
`);
    expect(trace.map((t) => t.matched)).toEqual([true, true]);
  });

  it('on remove, when the device is gone from sysfs, matches on the event alone', () => {
    const event = eventFromProperties(Object.assign(createProperties(), { ACTION: 'remove', DEVPATH: '/devices/virtual/gone/x0', SUBSYSTEM: 'tty' }), 0, 'kernel');
    const { trace } = run('rules:\n  - match: { action: remove, kernel: x0, attrs: { dev: "" } }\n  - match: { parent: { subsystem: usb } }\n', event);
    expect(trace.map((t) => t.failedKey ?? 'matched')).toEqual(['matched', 'parent']);
  });
});

describe('assignments', () => {
  it('sets, appends and removes properties; an empty value unsets', () => {
    const { plan } = run(`rules:
  - set: { env: { A: one, B: two, C: three, MAJOR: "" } }
  - append: { env: { A: more, NEW: first } }
  - remove: { env: [B] }
  - set: { env: { COPY: "$env{A}" } }
`);
    expect(plan.properties).toMatchObject({ A: 'one more', C: 'three', NEW: 'first', COPY: 'one more' });
    expect(plan.properties).not.toHaveProperty('B');
    expect(plan.properties).not.toHaveProperty('MAJOR');
  });

  it('does not change the event it was given', () => {
    const event = ttyEvent();
    run('rules:\n  - set: { env: { X: y } }\n', event);
    expect(event.properties).not.toHaveProperty('X');
  });

  it('collects symlinks in order without duplicates, removes, and exports DEVLINKS', () => {
    const { plan } = run(`rules:
  - set: { symlink: ["serial/a", "serial/b", "serial/a"], link_priority: "-5" }
  - remove: { symlink: serial/b }
  - set: { symlink: "one two" }
`);
    expect(plan.symlinks).toEqual(['/dev/serial/a', '/dev/one', '/dev/two']);
    expect(plan.linkPriority).toBe(-5);
    expect(plan.properties.DEVLINKS).toBe('/dev/serial/a /dev/one /dev/two');
  });

  it('sets owner, group, mode, tags, attributes and programs', () => {
    const { plan } = run(`rules:
  - set: { owner: root, group: [nogroup, dialout], mode: "660", tags: [a, b], attrs: { "power/control": "on" } }
    remove: { tags: a }
    run:
      - ["/bin/echo", "$kernel"]
      - { argv: ["/usr/bin/logger", "$devnode"], timeout: 1.5s }
`);
    expect(plan.owner).toEqual({ name: 'root', id: 0 });
    expect(plan.group).toEqual({ name: 'dialout', id: 20 });
    expect(plan.mode).toBe(0o660);
    expect(plan.tags).toEqual(['b']);
    expect(plan.properties.TAGS).toBe(':b:');
    expect(plan.attrs).toEqual([{ name: 'power/control', value: 'on', rule: 'test.yaml:2 (test.yaml:2:88)' }]);
    expect(plan.run.map((r) => [r.argv, r.timeoutMs])).toEqual([[['/bin/echo', 'ttyUSB0'], undefined], [['/usr/bin/logger', '/dev/ttyUSB0'], 1500]]);
  });

  it('renames only network interfaces', () => {
    const { plan } = run('rules:\n  - set: { name: eth-board }\n');
    expect(plan.name).toBeNull();
    expect(plan.warnings[0]).toMatch(/"name" renames only network interfaces/);
    const net = eventFromProperties(Object.assign(createProperties(), { ACTION: 'add', DEVPATH: '/devices/virtual/net/v0', SUBSYSTEM: 'net', INTERFACE: 'v0' }), 0, 'kernel');
    expect(run('rules:\n  - set: { name: "lan$number" }\n', net).plan.name).toBe('lan0');
    expect(run('rules:\n  - set: { name: "a-name-far-too-long-for-linux" }\n', net).plan.warnings[0]).toMatch(/refused interface name/);
  });

  it('stops at a rule with stop: true', () => {
    const { plan, trace } = run('rules:\n  - set: { tags: [a] }\n    stop: true\n  - set: { tags: [b] }\n');
    expect(trace).toHaveLength(1);
    expect(plan.tags).toEqual(['a']);
  });

  it('runs import programs through the caller and merges KEY=VALUE lines; a dry run skips them', () => {
    const yaml = `rules:
  - run: [{ argv: ["/lib/id-helper", "$kernel"], import: true }]
  - match: { env: { ID_FOO: bar } }
    set: { symlink: "foo/$result{2}" }
`;
    const seen: string[][] = [];
    const { plan, trace } = run(yaml, ttyEvent(), (request) => {
      seen.push(request.argv);
      return { stdout: 'ID_FOO=bar\nID_QUOTED="a b"\nnot a pair\n' };
    });
    expect(seen).toEqual([['/lib/id-helper', 'ttyUSB0']]);
    expect(plan.properties).toMatchObject({ ID_FOO: 'bar', ID_QUOTED: 'a b' });
    expect(plan.symlinks).toEqual(['/dev/foo/ID_QUOTED=_a']);
    expect(trace[1]?.matched).toBe(true);
    expect(plan.run).toEqual([]);
    const dry = run(yaml);
    expect(dry.plan.imports).toEqual([{ argv: ['/lib/id-helper', 'ttyUSB0'], timeoutMs: undefined, rule: 'test.yaml:2 (test.yaml:2:11)', ran: false }]);
    expect(dry.trace[1]).toMatchObject({ matched: false, failedKey: 'env.ID_FOO' });
  });
});

describe('substitutions against the device', () => {
  const expand = (template: string, match = '{ subsystem: tty }') =>
    run(`rules:\n  - match: ${match}\n    set: { env: { OUT: ${JSON.stringify(template)} } }\n`).plan.properties.OUT ?? '';

  const cases: [string, string][] = [
    ['$kernel', 'ttyUSB0'],
    ['$number', '0'],
    ['$devpath', TTY],
    ['$major:$minor', '188:0'],
    ['$devnode', '/dev/ttyUSB0'],
    ['$name', 'ttyUSB0'],
    ['$root $sys', '/dev /sys'],
    ['$env{DEVNAME}', 'ttyUSB0'],
    ['$env{MISSING}x', 'x'],
    ['$parent', ''],
    ['$result', ''],
    ['$$kernel', '$kernel'],
    // Attributes: the device's own, else the nearest ancestor's (no parent matched in this rule).
    ['$attr{power/control}', 'auto'],
    ['$attr{port_number}', '0'],
    ['$attr{bInterfaceNumber}', '00'],
    ['$attr{idVendor}:$attr{idProduct}', '1a86:7523'],
    ['$attr{manufacturer}', 'QinHeng Electronics'],
    ['$attr{no_such_attribute}', ''],
    ['$id $driver', 'ttyUSB0 '],
  ];
  it.each(cases)('%s → %s', (template, expected) => {
    expect(expand(template)).toBe(expected);
  });

  it('takes $id, $driver and $attr from the parent a parent condition selected', () => {
    expect(expand('$id $driver $attr{bInterfaceNumber}', '{ parent: { subsystem: usb, driver: ch341 } }')).toBe('1-2.2:1.0 ch341 00');
    // udev semantics: with a parent selected, an attribute it lacks is not looked for further up.
    expect(expand('[$attr{idVendor}]', '{ parent: { subsystem: usb-serial } }')).toBe('[]');
    expect(expand('$id $attr{idVendor}', '{ parent: { attrs: { idVendor: "?*" } } }')).toBe('1-2.2 1a86');
  });

  it('$links lists the links set so far', () => {
    const { plan } = run('rules:\n  - set: { symlink: [a, b/c] }\n  - set: { env: { L: "$links" } }\n');
    expect(plan.properties.L).toBe('a b/c');
  });
});

describe('hostile attribute values', () => {
  const HOSTILE = ['../../etc/x', '$(reboot)', ';rm -rf /', 'line1\nline2', '`id`', 'x'.repeat(4096)];

  it.each(HOSTILE.map((v) => [v.slice(0, 20), v]))('%j never leaves the dev root in a symlink, and reaches programs unchanged', (_, value) => {
    const dir = join(fake.root, USBDEV);
    writeFileSync(join(dir, 'serial'), `${value}\n`);
    try {
      const { plan } = run(`rules:
  - match: { parent: { attrs: { idVendor: "1a86" } } }
    set: { symlink: ["serial/by-id/usb-$attr{serial}", "$attr{serial}"] }
    run: [["/bin/echo", "$attr{serial}"]]
`);
      for (const link of plan.symlinks) {
        expect(link.startsWith('/dev/')).toBe(true);
        expect(link.split('/').slice(2)).not.toContain('..');
        expect(link).not.toMatch(/[\s$`;()]/);
      }
      if (value.length > 255) {
        expect(plan.symlinks).toEqual([]);
        expect(plan.warnings).toHaveLength(2);
      } else {
        expect(plan.symlinks).toHaveLength(2);
      }
      expect(plan.run[0]?.argv).toEqual(['/bin/echo', value]);
    } finally {
      writeFileSync(join(dir, 'serial'), 'A1B2\n');
    }
  });

  it('refuses tags and attribute paths that would escape', () => {
    mkdirSync(join(fake.root, USBDEV, 'x'), { recursive: true });
    const { plan } = run('rules:\n  - set: { tags: ["$env{DEVNAME}"], attrs: { "$env{MAJOR}/../x": "1" } }\n', ttyEvent('add', { DEVNAME: '..' }));
    expect(plan.tags).toEqual(['__']);
    expect(plan.attrs).toEqual([]);
    expect(plan.warnings).toEqual([
      expect.stringMatching(/^DEVNAME "\.\." leads outside /),
      expect.stringMatching(/refused attribute path/),
    ]);
  });
});

describe('index', () => {
  it('shows an event only the rules that can match its action and subsystem, in order', () => {
    const set = rules(`rules:
  - { name: a, match: { subsystem: tty } }
  - { name: b, match: { subsystem: net } }
  - { name: c, match: { action: remove } }
  - { name: d, match: { kernel: "*tty" } }
  - { name: e, match: { action: [add, change], subsystem: [tty, block] } }
`);
    expect(set.candidates('add', 'tty').always.map((r) => r.rule.name)).toEqual(['a', 'd', 'e']);
    expect(set.candidates('remove', 'net').always.map((r) => r.rule.name)).toEqual(['b', 'c', 'd']);
    expect(set.candidates('bind', 'usb').always.map((r) => r.rule.name)).toEqual(['d']);
  });
});

describe('the index is only a shortcut', () => {
  it('gives the same plans and matched rules as looking at every rule, on every recorded event', async () => {
    const { loadRules } = await import('../frontends/load.js');
    const { mergeSysfs } = await import('../../test/helpers/fake-sysfs.js');
    const { AncestorCache } = await import('../uevent/ancestors.js');
    const fixtures = loadUeventFixtures();
    const tree = buildFakeSysfs(mergeSysfs(fixtures.map((f) => Object.fromEntries(Object.entries(f.sysfs ?? {}).filter(([p]) => p.startsWith('/devices'))))));
    try {
      const all = new Sysfs(tree.root);
      const vendors = `rules:
${['1a86', '0403', '1e3d', '12d1', '046d'].map((v, i) => `  - name: vendor-${i}
    match: { parent: { subsystem: usb, attrs: { idVendor: "${v}" } } }
    set: { tags: ["v${v}"] }`).join('\n')}
`;
      // Property and kernel-name rules the index files by value, and the same shapes after a
      // rule that sets the property and after an import program that may set anything.
      const properties = (label: string) => `
  - { name: ${label}-devtype, match: { env: { DEVTYPE: usb_interface } }, set: { tags: ["${label}-if"] } }
  - { name: ${label}-product, match: { env: { PRODUCT: ["403/6001/400", "46d/89d/100"] } }, set: { tags: ["${label}-p"] } }
  - { name: ${label}-kernel, match: { kernel: ["tty*", "hidraw{0,1}"] }, set: { tags: ["${label}-k"] } }`;
      const changing = `rules:${properties('first')}
  - { name: retype, match: { env: { INTERFACE: "8/6/80" } }, set: { env: { DEVTYPE: usb_interface, PRODUCT: "403/6001/400" } } }${properties('after-set')}
  - { name: importer, match: { subsystem: usb }, run: [{ argv: ["/bin/probe"], import: true }] }${properties('after-import')}
`;
      const { ruleSet: shipped } = loadRules([join(import.meta.dirname, '..', '..', 'rules.d')]);
      const set = new RuleSet([...compileYamlRules(vendors, 'v.yaml', ACCOUNTS).rules, ...compileYamlRules(changing, 'c.yaml', ACCOUNTS).rules, ...shipped.rules]);
      const keyed = set.candidates('add', 'usb').keyed.map((k) => k.source);
      expect(keyed).toEqual(expect.arrayContaining(['ancestor-attr', 'property', 'kernel-initial']));
      // The import program answers with properties the rules after it test.
      const probe = () => ({ stdout: 'DEVTYPE=usb_interface\nPRODUCT=46d/89d/100\n' });
      const ancestors = new AncestorCache(all);
      const tagged = new Set<string>();
      let compared = 0;
      for (const fixture of fixtures) {
        for (const e of fixture.events) {
          if (e.layer !== 'kernel' || !e.action || !e.devpath || !e.subsystem) continue;
          const event = eventFromProperties(Object.assign(createProperties(), { ACTION: e.action, DEVPATH: e.devpath, SUBSYSTEM: e.subsystem }, e.env), 0, 'kernel');
          const full = evaluate(set, { event, device: all.device(event.devpath), trace: 'all' }, probe);
          const fast = evaluate(set, { event, device: all.device(event.devpath, ancestors), trace: 'matched' }, probe);
          expect(fast.plan).toEqual(full.plan);
          for (const tag of fast.plan.tags) tagged.add(tag);
          expect(fast.trace).toEqual(full.trace.filter((t) => t.matched));
          compared++;
        }
      }
      expect(compared).toBeGreaterThan(150);
      // Every shape of rule matched somewhere, so the comparison covered each.
      for (const label of ['first', 'after-set', 'after-import']) {
        for (const tag of ['if', 'p', 'k']) expect(tagged.has(`${label}-${tag}`), `${label}-${tag}`).toBe(true);
      }
    } finally {
      tree.remove();
    }
  });

  it('gives the same with Debian\'s udev rules, whose guards (SUBSYSTEM!="block", GOTO=...) leave whole blocks out', async () => {
    const { loadRules } = await import('../frontends/load.js');
    const { mergeSysfs } = await import('../../test/helpers/fake-sysfs.js');
    const { AncestorCache } = await import('../uevent/ancestors.js');
    const debian = '/usr/lib/udev/rules.d';
    expect(existsSync(debian), 'Debian\'s udev package').toBe(true);
    const { ruleSet: set } = loadRules([debian]);
    expect(set.rules.length).toBeGreaterThan(400);
    const fixtures = loadUeventFixtures();
    const tree = buildFakeSysfs(mergeSysfs(fixtures.map((f) => Object.fromEntries(Object.entries(f.sysfs ?? {}).filter(([p]) => p.startsWith('/devices'))))));
    try {
      const all = new Sysfs(tree.root);
      const ancestors = new AncestorCache(all);
      const probe = () => ({ stdout: '' });
      let compared = 0;
      let left = 0;
      for (const fixture of fixtures) {
        for (const e of fixture.events) {
          if (e.layer !== 'kernel' || !e.action || !e.devpath || !e.subsystem) continue;
          for (const action of new Set([e.action, 'change'])) {
            const event = eventFromProperties(Object.assign(createProperties(), { DEVPATH: e.devpath, SUBSYSTEM: e.subsystem }, e.env, { ACTION: action }), 0, 'kernel');
            const full = evaluate(set, { event, device: all.device(event.devpath), devRoot: '/dev', trace: 'all' }, probe);
            const fast = evaluate(set, { event, device: all.device(event.devpath, ancestors), devRoot: '/dev', trace: 'matched' }, probe);
            expect(fast.plan).toEqual(full.plan);
            expect(fast.trace).toEqual(full.trace.filter((t) => t.matched));
            const c = set.candidates(action, e.subsystem);
            left += set.rules.length - c.always.length - c.keyed.reduce((n, k) => n + new Set([...k.byValue.values()].flat()).size, 0);
            compared++;
          }
        }
      }
      expect(compared).toBeGreaterThan(300);
      expect(left / compared).toBeGreaterThan(100); // the guards leave out hundreds of rules per event
    } finally {
      tree.remove();
    }
  });
});
