import { describe, expect, it } from 'vitest';
import { staticAccounts } from '../os/accounts.js';
import { formatDiagnostic } from '../rules/model.js';
import { compileYamlRules } from './yaml.js';

const accounts = staticAccounts({ root: 0, console: 1000 }, { root: 0, dialout: 20, plugdev: 46 });
const compile = (text: string) => compileYamlRules(text, 'test.yaml', accounts);
const messages = (text: string) => compile(text).diagnostics.map(formatDiagnostic);

describe('YAML rules', () => {
  it('compiles the example of the issue into conditions, assignments and an index', () => {
    const { rules, diagnostics } = compile(`
rules:
  - name: usb-serial-console
    match:
      action: add
      subsystem: tty
      kernel: "ttyUSB*"
      parent:
        subsystem: usb
        attrs: { idVendor: "0403", idProduct: "6001" }
    set:
      symlink: "serial/by-id/usb-$attr{manufacturer}_$attr{serial}"
      group: dialout
      mode: "0660"
      env: { BOARD_PORT: console }
      tags: [console]
    run:
      - ["/usr/local/bin/console-attached", "$devnode"]
`);
    expect(diagnostics).toEqual([]);
    const [rule] = rules;
    expect(rule?.name).toBe('usb-serial-console');
    expect(rule?.at).toEqual({ file: 'test.yaml', line: 3, column: 5 });
    expect(rule?.conditions.map((c) => c.key)).toEqual(['action', 'subsystem', 'kernel', 'parent']);
    expect(rule?.assignments.map((a) => a.kind)).toEqual(['symlink', 'group', 'mode', 'env', 'tag', 'run']);
    expect([...(rule?.actions ?? [])]).toEqual(['add']);
    expect([...(rule?.subsystems ?? [])]).toEqual(['tty']);
    const group = rule?.assignments.find((a) => a.kind === 'group');
    expect(group).toMatchObject({ account: { name: 'dialout', id: 20 } });
    expect(rule?.assignments.find((a) => a.kind === 'mode')).toMatchObject({ mode: 0o660 });
  });

  it('keeps leading zeros and words such as yes/no as strings', () => {
    const { rules } = compile('rules:\n  - match: { attrs: { idVendor: 0403, removable: yes } }\n');
    const attrs = rules[0]?.conditions.map((c) => (c.kind === 'attr' ? c.matcher.source : ''));
    expect(attrs).toEqual(['0403', 'yes']);
  });

  it('names unnamed rules by file and line', () => {
    expect(compile('rules:\n  - match: { subsystem: net }\n').rules[0]?.name).toBe('test.yaml:2');
  });

  const problems: [string, string, string][] = [
    ['misspelt key with a hint', 'rules:\n  - match: { subsytem: tty }\n', 'test.yaml:2:14: error: unknown key "subsytem" in match (did you mean "subsystem"?)'],
    ['unknown rule key', 'rules:\n  - mach: { subsystem: tty }\n', 'test.yaml:2:5: error: unknown key "mach" in a rule (did you mean "match"?)'],
    ['mode not octal', 'rules:\n  - set: { mode: "0999" }\n', 'test.yaml:2:18: error: mode: expected an octal mode such as "0660", got "0999" (quote it: mode: "0660")'],
    ['unknown group', 'rules:\n  - set: { group: wheel }\n', 'test.yaml:2:19: error: unknown group "wheel" (not in /etc/group)'],
    ['unknown groups in a list', 'rules:\n  - set: { group: [gpio, i2c] }\n', 'test.yaml:2:19: error: unknown group "gpio", "i2c" (not in /etc/group)'],
    ['unknown user', 'rules:\n  - set: { owner: nobody2 }\n', 'test.yaml:2:19: error: unknown user "nobody2" (not in /etc/passwd)'],
    ['bad substitution, column of the $', 'rules:\n  - set: { symlink: "by-id/$serial" }\n', 'test.yaml:2:28: error: symlink: unknown substitution "$serial" (write "$$" for a literal "$")'],
    ['absolute symlink', 'rules:\n  - set: { symlink: /dev/x }\n', 'test.yaml:2:21: error: symlink "/dev/x" must be relative to the device directory (write "x")'],
    ['symlink with ..', 'rules:\n  - set: { symlink: "a/../../etc" }\n', 'test.yaml:2:21: error: symlink "a/../../etc" must not contain "." or ".." segments'],
    ['run through a shell string', 'rules:\n  - run: ["logger hi"]\n', 'test.yaml:2:11: error: run: expected an argv list such as ["/usr/bin/logger", "$kernel"] (programs never run through a shell)'],
    ['relative program', 'rules:\n  - run: [[logger, hi]]\n', 'test.yaml:2:12: error: run: the program "logger" must be an absolute path (write "/usr/bin/logger")'],
    ['bad timeout', 'rules:\n  - run: [{ argv: [/bin/true], timeout: soon }]\n', 'test.yaml:2:41: error: timeout: expected a duration such as "30s", "500ms" or "2m" (at most 24 h), got "soon"'],
    ['run entry without argv', 'rules:\n  - run: [{ timeout: 5s }]\n', 'test.yaml:2:11: error: a run entry needs "argv": a list such as ["/usr/bin/logger", "$kernel"]'],
    ['bad env name', 'rules:\n  - set: { env: { "A-B": x } }\n', 'test.yaml:2:19: error: set.env: "A-B" is not a valid property name (letters, digits and _)'],
    ['stop not boolean', 'rules:\n  - stop: yes\n', 'test.yaml:2:11: error: stop: expected true or false, got "yes"'],
    ['match value is a map', 'rules:\n  - match: { kernel: { a: b } }\n', 'test.yaml:2:22: error: kernel: expected a string or a list of strings, got a map'],
    ['empty list', 'rules:\n  - match: { action: [] }\n', 'test.yaml:2:22: error: action: expected at least one value, got an empty list'],
    ['attribute leaving the device', 'rules:\n  - match: { attrs: { "../x": "1" } }\n', 'test.yaml:2:23: error: attrs.../x: attribute names are relative to the device and cannot contain ".."'],
    ['no rules list', 'match: {}\n', 'test.yaml:1:1: error: unknown key "match" in the file (expected one of: rules, beside-udev)'],
    ['rules not a list', 'rules: 3\n', 'test.yaml:1:8: error: rules: expected a list, got "3"'],
    ['YAML syntax', 'rules:\n  - match: { kernel: "tty\n', 'test.yaml:3:1: error: Missing closing "quote'],
    ['duplicate key', 'rules:\n  - match: { kernel: a, kernel: b }\n', 'test.yaml:2:25: error: Map keys must be unique'],
  ];
  it.each(problems)('reports %s with file:line:column', (_, text, expected) => {
    expect(messages(text)).toContain(expected);
  });

  it('collects every problem of a file and drops only the broken rules', () => {
    const { rules, diagnostics } = compile(`
rules:
  - name: good-1
    match: { subsystem: net }
  - name: broken
    match: { subsytem: net }
    set: { mode: "77777" }
  - name: good-2
    match: { subsystem: tty }
`);
    expect(rules.map((r) => r.name)).toEqual(['good-1', 'good-2']);
    expect(diagnostics.filter((d) => d.severity === 'error').map((d) => d.at.line)).toEqual([6, 7]);
  });

  it('warns about a rule without match, which applies to every event', () => {
    expect(messages('rules:\n  - set: { tags: [x] }\n')).toEqual(['test.yaml:2:5: warning: rule "test.yaml:2" has no "match": it applies to every event']);
  });

  it('treats an empty file as no rules', () => {
    expect(compile('')).toEqual({ rules: [], diagnostics: [] });
    expect(compile('# only a comment\n')).toEqual({ rules: [], diagnostics: [] });
  });
});

describe('jobs and units', () => {
  it('compiles a job with its restart policy and stop signal, and a systemd unit', () => {
    const { rules, diagnostics } = compile(`rules:
  - match: { subsystem: tty }
    job: { argv: ["/usr/sbin/gpsd", "-N", "$devnode"], restart: always, stop_signal: SIGINT }
    systemd_unit: "gpsd@$kernel.service"
`);
    expect(diagnostics).toEqual([]);
    expect(rules[0]?.assignments.map((a) => a.kind)).toEqual(['job', 'unit']);
    expect(rules[0]?.assignments[0]).toMatchObject({ restart: 'always', stopSignal: 'SIGINT' });
  });

  const problems: [string, string, string][] = [
    ['bad restart', 'rules:\n  - job: { argv: [/bin/x], restart: sometimes }\n', 'test.yaml:2:37: error: restart: expected on-failure, always, never, got "sometimes"'],
    ['bad signal', 'rules:\n  - job: { argv: [/bin/x], stop_signal: TERM }\n', 'test.yaml:2:41: error: stop_signal: expected one of SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGKILL, got "TERM"'],
    ['relative job program', 'rules:\n  - job: { argv: [gpsd] }\n', 'test.yaml:2:19: error: job: the program "gpsd" must be an absolute path'],
    ['job without argv', 'rules:\n  - job: { restart: always }\n', 'test.yaml:2:10: error: job: "argv" must be a list such as ["/usr/sbin/gpsd", "-N", "$devnode"]'],
  ];
  it.each(problems)('reports %s', (_, text, expected) => {
    expect(messages(text)).toContain(expected);
  });
});
