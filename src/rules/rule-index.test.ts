// The rule index files a rule under a condition only where that condition is decided by
// what the event shows before any rule ran; everywhere else the rule is tested for every event.
import { describe, expect, it } from 'vitest';
import { compileYamlRules } from '../frontends/yaml.js';
import { compileUdevRules } from '../frontends/udev/compile.js';
import { staticAccounts } from '../os/accounts.js';
import { RuleSet, selectRules } from './ruleset.js';
import type { IndexSource } from './rule-index.js';

const ACCOUNTS = staticAccounts({ root: 0 }, { root: 0 });

function yamlSet(yaml: string): RuleSet {
  const { rules, diagnostics } = compileYamlRules(yaml, 'test.yaml', ACCOUNTS);
  expect(diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
  return new RuleSet(rules);
}

function keys(set: RuleSet, action = 'add', subsystem = 'tty'): Record<string, string> {
  const candidates = set.candidates(action, subsystem);
  const out: Record<string, string> = {};
  for (const r of candidates.always) out[r.rule.name] = 'always';
  for (const { source, name, byValue } of candidates.keyed) {
    for (const [value, rules] of byValue) for (const r of rules) out[r.rule.name] = `${source}:${name}=${value}`;
  }
  return out;
}

describe('the rule index', () => {
  it('files property matches by value while nothing before them can have changed the property', () => {
    const set = yamlSet(`rules:
  - { name: by-vendor, match: { env: { ID_VENDOR_ID: "0403" } }, set: { tags: [a] } }
  - { name: setter, match: { kernel: "*" }, set: { env: { ID_VENDOR_ID: "1a86" } } }
  - { name: after-setter, match: { env: { ID_VENDOR_ID: "1a86" } }, set: { tags: [b] } }
  - { name: other-key, match: { env: { ID_MODEL_ID: "7523" } }, set: { tags: [c] } }
  - { name: empty-value, match: { env: { ID_SERIAL: "" } }, set: { tags: [d] } }
  - { name: glob-value, match: { env: { ID_MODEL: "FT*" } }, set: { tags: [e] } }
  - { name: importer, run: [{ argv: ["/bin/true"], import: true }] }
  - { name: after-import, match: { env: { ID_MODEL_ID: "7523" } }, set: { tags: [f] } }
`);
    expect(keys(set)).toEqual({
      'by-vendor': 'property:ID_VENDOR_ID=0403',
      setter: 'always',
      'after-setter': 'always',
      'other-key': 'property:ID_MODEL_ID=7523',
      'empty-value': 'always',
      'glob-value': 'always',
      importer: 'always',
      'after-import': 'always',
    });
  });

  it('files parent attribute matches by value, but not a value that ends in whitespace (udev matches it untrimmed)', () => {
    const { rules, diagnostics } = compileUdevRules(
      'SUBSYSTEMS=="scsi", ATTRS{ws}=="WHITE  SPACE   ", SYMLINK+="spaced"\nSUBSYSTEMS=="scsi", ATTRS{ws}=="WHITE", SYMLINK+="plain"\n',
      '50-ws.rules',
      ACCOUNTS,
    );
    expect(diagnostics).toEqual([]);
    const set = new RuleSet(rules);
    const filed = keys(set, 'add', 'block');
    expect(Object.values(filed).sort()).toEqual(['always', 'ancestor-attr:ws=WHITE']);
  });

  it('files kernel-name patterns by their literal first characters, and nothing that could start otherwise', () => {
    const set = yamlSet(`rules:
  - { name: prefix, match: { kernel: "ttyUSB*" } }
  - { name: list, match: { kernel: ["sd*", "vd[a-z]", "nvme{0,1}n1"] } }
  - { name: leading-star, match: { kernel: "*USB*" } }
  - { name: negated, match: { kernel: "!tty*" } }
  - { name: escaped, match: { kernel: "\\\\*x" } }
`);
    expect(keys(set)).toEqual({
      prefix: 'kernel-initial:=t',
      list: expect.stringMatching(/^kernel-initial:=[svn]$/),
      'leading-star': 'always',
      negated: 'always',
      escaped: 'kernel-initial:=*',
    });
    const lookup = (kernel: string) => (source: IndexSource) => (source === 'kernel-initial' ? [kernel[0] as string] : []);
    const names = (kernel: string) => selectRules(set.candidates('add', 'tty'), lookup(kernel)).map((r) => r.rule.name);
    expect(names('ttyUSB0')).toEqual(['prefix', 'leading-star', 'negated']);
    expect(names('vda')).toEqual(['list', 'leading-star', 'negated']);
    expect(names('*x')).toEqual(['leading-star', 'negated', 'escaped']);
  });

  it('keeps udev rules after an IMPORT or a PROGRAM unfiled, and those before it filed', () => {
    const { rules } = compileUdevRules(
      [
        'ENV{ID_BUS}=="usb", KERNEL=="tty*", TAG+="a"',
        'KERNEL!="tty*", TAG+="b"',
        'KERNEL=="tty*|ttyS*", ENV{ID_BUS}=="usb", IMPORT{program}="/bin/true", ENV{ID_MODEL}=="x", TAG+="c"',
        'ENV{ID_BUS}=="usb", TAG+="d"',
      ].join('\n'),
      'test.rules',
      ACCOUNTS,
    );
    const filed = keys(new RuleSet(rules));
    expect(rules.map((r) => filed[r.name])).toEqual(['property:ID_BUS=usb', 'always', 'property:ID_BUS=usb', 'always']);
    // udev tests ENV before running the program, whatever the order written; a property tested
    // after the rule's own import program (an order another front end could compile) is not the event's own.
    const [rule] = compileUdevRules('IMPORT{program}="/bin/true", ENV{ID_MODEL}=="x", TAG+="z"', 'first.rules', ACCOUNTS).rules;
    expect(rule?.conditions.map((c) => c.kind)).toEqual(['env', 'import']);
    expect(Object.values(keys(new RuleSet([rule!])))).toEqual(['property:ID_MODEL=x']);
    expect(Object.values(keys(new RuleSet([{ ...rule!, conditions: [...rule!.conditions].reverse() }])))).toEqual(['always']);
  });

  it('merges the rules filed under several values back into rule order, each once', () => {
    const set = yamlSet(`rules:
${Array.from({ length: 6 }, (_, i) => `  - { name: r${i}, match: { ${i % 2 ? 'kernel: "*"' : `parent: { attrs: { idVendor: ["v${i}", "v0"] } }`} } }`).join('\n')}
`);
    const selected = selectRules(set.candidates('add', 'usb'), (source) => (source === 'ancestor-attr' ? ['v0', 'v4', 'v0'] : []));
    expect(selected.map((r) => r.rule.name)).toEqual(['r0', 'r1', 'r2', 'r3', 'r4', 'r5']);
  });

  it('leaves out the rules a guard of action and subsystem always jumps over, and only those', () => {
    const { rules, diagnostics } = compileUdevRules(
      [
        'ACTION=="remove", GOTO="input_end"', // decided: never jumps for add
        'SUBSYSTEM!="input", GOTO="input_end"', // decided: always jumps for tty
        'ATTRS{id/bustype}=="0005", ENV{ID_BUS}="bluetooth"',
        'KERNEL=="event*", ENV{ID_INPUT}="1"',
        'LABEL="input_end"',
        'ENV{MAYBE}=="1", GOTO="inside"', // may jump: lands inside the next guard's block
        'SUBSYSTEM!="input", GOTO="net_end"',
        'ENV{BEFORE_INSIDE}="1"',
        'LABEL="inside"',
        'ENV{INSIDE}="1"',
        'LABEL="net_end"',
        'SUBSYSTEM=="tty", GOTO="tty_end"', // always jumps for tty, over a guard of its own
        'SUBSYSTEM!="block", GOTO="far_end"', // never runs for tty: its jump past tty_end does not count
        'ENV{IN_TTY_BLOCK}="1"',
        'LABEL="tty_end"',
        'ENV{AFTER_TTY}="1"',
        'LABEL="far_end"',
        'ENV{LAST}="1"',
      ].join('\n'),
      '60-guards.rules',
      ACCOUNTS,
    );
    expect(diagnostics).toEqual([]);
    const set = new RuleSet(rules);
    const line = (r: { rule: { name: string } }) => Number(r.rule.name.split(':')[1]);
    const lines = (subsystem: string) => {
      const candidates = set.candidates('add', subsystem);
      return [...candidates.always, ...candidates.keyed.flatMap((k) => [...k.byValue.values()].flat())].map(line).sort((a, b) => a - b);
    };
    // (1 is a remove rule; labels alone do nothing, so they are no candidates.) 3 and 4 are
    // jumped over by 2; 8 stays (6 may land at 9, inside 7's block: so 7 guards nothing); 13
    // and 14 by 12, and 13 never runs, so 16 stays.
    expect(lines('tty')).toEqual([2, 6, 7, 8, 10, 12, 16, 18]);
    // An input event: the input blocks stay, and the guards that never jump for input go (2, 7;
    // 12 is a tty rule); 13 always jumps over 14 to 16.
    expect(lines('input')).toEqual([3, 4, 6, 8, 10, 13, 18]);
  });
});
