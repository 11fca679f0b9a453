import { describe, expect, it } from 'vitest';
import { compileTemplate, expandTemplate, sanitizePathComponent, TemplateError, type SubstitutionName } from './format.js';

// Every substitution answers with its own name (and argument), so expansions show what was looked up.
const echo = { lookup: (name: SubstitutionName, arg: string | undefined) => (arg === undefined ? `<${name}>` : `<${name}:${arg}>`) };
const expand = (text: string) => expandTemplate(compileTemplate(text), echo);

describe('templates', () => {
  const forms: [string, string][] = [
    ['$kernel', '<kernel>'], ['%k', '<kernel>'],
    ['$number', '<number>'], ['%n', '<number>'],
    ['$devpath', '<devpath>'], ['%p', '<devpath>'],
    ['$id', '<id>'], ['%b', '<id>'],
    ['$driver', '<driver>'], ['%d', '<driver>'],
    ['$attr{serial}', '<attr:serial>'], ['%s{serial}', '<attr:serial>'], ['$sysfs{serial}', '<attr:serial>'],
    ['$env{ID_BUS}', '<env:ID_BUS>'], ['%E{ID_BUS}', '<env:ID_BUS>'],
    ['$major', '<major>'], ['%M', '<major>'],
    ['$minor', '<minor>'], ['%m', '<minor>'],
    ['$result', '<result>'], ['%c', '<result>'],
    ['$parent', '<parent>'], ['%P', '<parent>'],
    ['$name', '<name>'], ['%D', '<name>'],
    ['$links', '<links>'], ['%L', '<links>'],
    ['$root', '<root>'], ['%r', '<root>'],
    ['$sys', '<sys>'], ['%S', '<sys>'],
    ['$devnode', '<devnode>'], ['%N', '<devnode>'], ['$tempnode', '<devnode>'],
    ['$$', '$'], ['%%', '%'], ['100%% $$HOME', '100% $HOME'],
    ['usb-$kernel-x', 'usb-<kernel>-x'],
    ['$kernelfoo', '<kernel>foo'],
    ['plain text', 'plain text'],
  ];
  it.each(forms)('%s expands to %s', (text, expected) => {
    expect(expand(text)).toBe(expected);
  });

  it('keeps constant templates constant', () => {
    expect(compileTemplate('serial/by-id/x').constant).toBe('serial/by-id/x');
    expect(compileTemplate('').constant).toBe('');
    expect(compileTemplate('a$kernel').constant).toBeUndefined();
  });

  const errors: [string, RegExp, number][] = [
    ['$bogus', /unknown substitution "\$bogus"/, 0],
    ['ab%q', /unknown substitution "%q"/, 2],
    ['x$attr', /needs an argument/, 1],
    ['$env{}', /needs an argument/, 0],
    ['$attr{serial', /unterminated "\{"/, 5],
    ['$kernel{x}', /takes no \{argument\}/, 0],
    ['$result{x}', /word number/, 0],
    ['50%', /unknown substitution "%"/, 2],
  ];
  it.each(errors)('%s is an error at its offset', (text, message, offset) => {
    let caught: unknown;
    try {
      compileTemplate(text);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(TemplateError);
    expect((caught as TemplateError).message).toMatch(message);
    expect((caught as TemplateError).offset).toBe(offset);
  });

  it('selects words of $result', () => {
    const source = { lookup: () => ' one two  three ' };
    // As udev: words count from 1, and {0} is the whole output.
    expect(expandTemplate(compileTemplate('$result{2}'), source)).toBe('two');
    expect(expandTemplate(compileTemplate('%c{2+}'), source)).toBe('two three');
    expect(expandTemplate(compileTemplate('$result{9}'), source)).toBe('');
    expect(expandTemplate(compileTemplate('$result{0}'), source)).toBe(' one two  three ');
  });

  it('sanitises substituted text, not the literal text, in paths', () => {
    const hostile = { lookup: () => '../../etc/x' };
    expect(expandTemplate(compileTemplate('serial/by-id/$attr{serial}'), hostile, 'path')).toBe('serial/by-id/.._.._etc_x');
    expect(expandTemplate(compileTemplate('serial/by-id/$attr{serial}'), hostile, 'none')).toBe('serial/by-id/../../etc/x');
  });
});

describe('sanitizePathComponent', () => {
  const cases: [string, string][] = [
    ['Flash Disk', 'Flash_Disk'],
    ['../../x', '.._.._x'],
    ['..', '__'],
    ['.', '_'],
    ['$(reboot)', '__reboot_'],
    ['a;rm -rf /', 'a_rm_-rf__'],
    ['line\nbreak\ttab', 'line_break_tab'],
    ['nul\0byte', 'nul_byte'],
    ['keep#+-.:=@_09AZaz', 'keep#+-.:=@_09AZaz'],
    ['Größe', 'Größe'],
    ['`id`', '_id_'],
  ];
  it.each(cases)('%j becomes %j', (value, expected) => {
    expect(sanitizePathComponent(value)).toBe(expected);
  });

  it('never lets a separator through, whatever the input', () => {
    for (let code = 0; code < 0x3000; code++) {
      const out = sanitizePathComponent(`a${String.fromCharCode(code)}b`);
      expect(out.includes('/')).toBe(false);
      expect(/\s/.test(out)).toBe(false);
    }
  });
});
