// Links in a temporary dev root: priorities, hand-over on remove, cleanup, and refusal
// to follow or replace what is not ours.
import { existsSync, lstatSync, mkdirSync, readdirSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { makeTempDir } from '../../test/helpers/netns.js';
import { LinkTable } from './links.js';

let dev: { path: string; remove(): void };
let table: LinkTable;
beforeEach(() => {
  dev = makeTempDir('links');
  table = new LinkTable(dev.path);
});
afterEach(() => dev.remove());

const at = (rel: string) => join(dev.path, rel);
const target = (rel: string) => readlinkSync(at(rel));

describe('LinkTable', () => {
  it('creates relative links, parents included, and removes them with the device', () => {
    const results = table.update('/devices/a', at('ttyUSB0'), [at('serial/by-id/usb-x'), at('console')], 0);
    expect(results.map((r) => [r.target, r.ok])).toEqual([[at('serial/by-id/usb-x'), true], [at('console'), true]]);
    expect(target('serial/by-id/usb-x')).toBe('../../ttyUSB0');
    expect(target('console')).toBe('ttyUSB0');
    expect(table.update('/devices/a', at('ttyUSB0'), [at('serial/by-id/usb-x'), at('console')], 0)).toEqual([]);
    table.remove('/devices/a');
    expect(existsSync(at('console'))).toBe(false);
    expect(lstatSync(at('serial/by-id/usb-x'), { throwIfNoEntry: false })).toBeUndefined();
  });

  it('gives a shared link to the highest priority, then the newest, and hands it over on remove', () => {
    table.update('/devices/low', at('ttyUSB0'), [at('modem')], -10);
    table.update('/devices/high', at('ttyUSB1'), [at('modem')], 10);
    table.update('/devices/newer-low', at('ttyUSB2'), [at('modem')], -10);
    expect(target('modem')).toBe('ttyUSB1');
    table.remove('/devices/high');
    expect(target('modem')).toBe('ttyUSB2');
    table.remove('/devices/newer-low');
    expect(target('modem')).toBe('ttyUSB0');
    table.remove('/devices/low');
    expect(existsSync(at('modem'))).toBe(false);
  });

  it('drops links a device no longer asks for on change', () => {
    table.update('/devices/a', at('ttyUSB0'), [at('one'), at('two')], 0);
    table.update('/devices/a', at('ttyUSB0'), [at('two')], 0);
    expect(existsSync(at('one'))).toBe(false);
    expect(target('two')).toBe('ttyUSB0');
  });

  it('never replaces a file that is not a link, nor creates links through a planted symlink', () => {
    writeFileSync(at('taken'), 'a real file');
    const [taken] = table.update('/devices/a', at('ttyUSB0'), [at('taken')], 0);
    expect(taken).toMatchObject({ ok: false, error: expect.stringMatching(/^EEXIST/) });
    const outside = makeTempDir('outside');
    try {
      symlinkSync(outside.path, at('serial'));
      const [through] = table.update('/devices/b', at('ttyUSB1'), [at('serial/by-id/x')], 0);
      expect(through).toMatchObject({ ok: false, error: expect.stringMatching(/^ENOTDIR/) });
      expect(existsSync(join(outside.path, 'by-id'))).toBe(false);
    } finally {
      outside.remove();
    }
    const [escape] = table.update('/devices/c', at('ttyUSB2'), [join(dev.path, '../escape')], 0);
    expect(escape).toMatchObject({ ok: false, error: expect.stringMatching(/^EOUTSIDE/) });
  });

  it('replaces links atomically, leaving no temporary files', () => {
    mkdirSync(at('d'));
    table.update('/devices/a', at('ttyUSB0'), [at('d/link')], 0);
    table.update('/devices/b', at('ttyUSB1'), [at('d/link')], 5);
    expect(target('d/link')).toBe('../ttyUSB1');
    expect(readdirSync(at('d'))).toEqual(['link']);
  });
});
