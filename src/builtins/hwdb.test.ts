// The compiled hwdb.bin reader against systemd-hwdb itself: databases compiled by
// `systemd-hwdb update --root` from text written here, looked up by the trie reader, by
// the text parser and by `systemd-hwdb query`, which must agree.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync, existsSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { HwdbText, hwdbTextFiles } from './hwdb-text.js';
import { HwdbFormatError, HwdbTrie } from './hwdb-trie.js';
import { HWDB_BIN_PATHS, machineHwdb, openHwdb, useHwdb } from './hwdb.js';

const VENDOR = `# vendors
usb:v0421*
 ID_VENDOR_FROM_DATABASE=Nokia Mobile Phones

usb:v0421p007B*
usb:v0421p007C*
 ID_MODEL_FROM_DATABASE=N78 (PC-Suite)

pci:v00008086d00008500sv00001993sd00000DED*
 ID_MODEL_FROM_DATABASE=IXP4XX (mGuard-PCI AV#2)

usb:v1A86p7523*
 ID_MODEL_FROM_DATABASE=CH340 série ünïcode
usb:v1A86p7524*
 ID_MODEL_FROM_DATABASE=dropped: this match line ends the record above
`;
const QUIRKS = `usb:v*p*d*dc02dsc00*
 ID_USB_CLASS_QUIRK=comm

usb:v0421p007[A-C]*
 ID_MODEL_FROM_DATABASE=N78 (later file)

usb:v0421p00?B*
 ID_AUTOSUSPEND=1
`;
const ALIASES = [
  'usb:v0421p007Bd0100dc02dsc00dp00ic02isc02ip01in00',
  'usb:v0421p007Cd0100',
  'usb:v0421p0000',
  'usb:v1A86p7523d0254dc02dsc00',
  'usb:v1A86p7524',
  'pci:v00008086d00008500sv00001993sd00000DEDbc02',
  'usb:vFFFFpFFFFd0000dc02dsc00dp00',
  'usb:',
  '',
];

let root: string;
beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'hotplugd-hwdb-'));
  writeDatabase(root, { '20-vendor.hwdb': VENDOR, '60-quirks.hwdb': QUIRKS });
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

function writeDatabase(at: string, files: Record<string, string>): void {
  mkdirSync(join(at, 'etc/udev/hwdb.d'), { recursive: true });
  for (const [name, text] of Object.entries(files)) writeFileSync(join(at, 'etc/udev/hwdb.d', name), text);
  execFileSync('systemd-hwdb', ['--root', at, 'update'], { stdio: ['ignore', 'ignore', 'pipe'] });
}

function systemdQuery(at: string, modalias: string): Record<string, string> {
  const out = execFileSync('systemd-hwdb', ['--root', at, 'query', modalias], { encoding: 'utf8' });
  return Object.fromEntries(out.split('\n').filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}

describe('hwdb.bin', () => {
  it('gives what systemd-hwdb query gives, key order included, and the text parser agrees', () => {
    const trie = new HwdbTrie(readFileSync(join(root, 'etc/udev/hwdb.bin')));
    const text = HwdbText.load([join(root, 'etc/udev/hwdb.d')]);
    for (const alias of ALIASES) {
      const expected = systemdQuery(root, alias);
      expect(Object.entries(trie.lookup(alias)), alias).toEqual(Object.entries(expected));
      expect(text.lookup(alias), alias).toEqual(expected);
    }
    // The cases the aliases are there for, spelled out.
    expect(trie.lookup(ALIASES[0] as string)).toEqual({
      ID_VENDOR_FROM_DATABASE: 'Nokia Mobile Phones',
      ID_USB_CLASS_QUIRK: 'comm',
      ID_MODEL_FROM_DATABASE: 'N78 (later file)',
      ID_AUTOSUSPEND: '1',
    });
    expect(trie.lookup(ALIASES[3] as string).ID_MODEL_FROM_DATABASE).toBe('CH340 série ünïcode');
    expect(trie.lookup('usb:v1A86p7524')).toEqual({});
    expect(trie.lookup(ALIASES[5] as string).ID_MODEL_FROM_DATABASE).toBe('IXP4XX (mGuard-PCI AV');
  });

  it('agrees with the text files on the machine for a sample of their own patterns', () => {
    const bin = HWDB_BIN_PATHS.find((path) => existsSync(path));
    expect(bin, 'Debian\'s udev package installs a hwdb.bin').toBeDefined();
    const files = hwdbTextFiles();
    if (files.some((file) => statSync(file).mtimeMs > statSync(bin as string).mtimeMs)) {
      // systemd-udevd would read the stale bin; hotplugd reads the text, which is what is compared below.
      expect(openHwdb().source).toMatch(/newer than/);
      return;
    }
    const trie = new HwdbTrie(readFileSync(bin as string));
    const text = HwdbText.load();
    const aliases = files
      .flatMap((file) => readFileSync(file, 'utf8').split('\n'))
      .filter((line) => line !== '' && !line.startsWith(' ') && !line.startsWith('#'))
      .filter((_, i) => i % 400 === 0)
      .map((pattern) => pattern.replace(/\[[^\]]*\]/g, '0').replace(/\*/g, 'X').replace(/\?/g, '1'));
    expect(aliases.length).toBeGreaterThan(100);
    let found = 0;
    for (const alias of aliases) {
      const fromBin = trie.lookup(alias);
      if (Object.keys(fromBin).length > 0) found++;
      expect(Object.entries(fromBin).sort(), alias).toEqual(Object.entries(text.lookup(alias)).sort());
    }
    expect(found).toBeGreaterThan(aliases.length * 0.9);
  });

  it('refuses a file that is not a whole hwdb.bin, and a corrupt trie fails its lookup with an error', () => {
    const data = readFileSync(join(root, 'etc/udev/hwdb.bin'));
    expect(() => new HwdbTrie(Buffer.from('not a database'))).toThrow(HwdbFormatError);
    expect(() => new HwdbTrie(data.subarray(0, data.length - 100))).toThrow(/caught mid-write/);
    // The root node's first child pointing back at the root: a cycle.
    const cyclic = Buffer.from(data);
    const nodeSize = cyclic.readUInt32LE(32);
    const rootOffset = cyclic.readUInt32LE(56);
    for (let n = 0; n < (cyclic[rootOffset + 8] as number); n++) cyclic.writeUInt32LE(rootOffset, rootOffset + nodeSize + n * 16 + 8);
    const trie = new HwdbTrie(cyclic);
    expect(() => trie.lookup('u'.repeat(5000))).toThrow(HwdbFormatError);
    // Offsets past the end.
    const wild = Buffer.from(data);
    wild.writeUInt32LE(data.length + 1000, rootOffset);
    expect(() => new HwdbTrie(wild).lookup('usb:v0421')).toThrow(/runs past the end/);
  });
});

describe('openHwdb', () => {
  it('reads hwdb.bin when it is up to date, the text files when one is newer or the bin is broken, and says why', () => {
    const dirs = [join(root, 'etc/udev/hwdb.d')];
    const bin = join(root, 'etc/udev/hwdb.bin');
    const fresh = openHwdb([join(root, 'missing/hwdb.bin'), bin], dirs);
    expect(fresh).toBeInstanceOf(HwdbTrie);
    expect(fresh.source).toBe(bin);

    const later = (statSync(bin).mtimeMs + 5_000) / 1000;
    utimesSync(join(dirs[0] as string, '60-quirks.hwdb'), later, later);
    const stale = openHwdb([bin], dirs);
    expect(stale).toBeInstanceOf(HwdbText);
    expect(stale.source).toMatch(/60-quirks\.hwdb is newer than .*hwdb\.bin; run systemd-hwdb update/);
    expect(stale.lookup(ALIASES[0] as string).ID_AUTOSUSPEND).toBe('1');

    const earlier = (statSync(bin).mtimeMs - 5_000) / 1000;
    utimesSync(join(dirs[0] as string, '60-quirks.hwdb'), earlier, earlier);
    const other = mkdtempSync(join(tmpdir(), 'hotplugd-hwdb-'));
    try {
      writeFileSync(join(other, 'hwdb.bin'), readFileSync(bin).subarray(0, statSync(bin).size - 100));
      const broken = openHwdb([join(other, 'hwdb.bin')], dirs);
      expect(broken).toBeInstanceOf(HwdbText);
      expect(broken.source).toMatch(/caught mid-write/);
      // A board that ships only the compiled file.
      writeFileSync(join(other, 'hwdb.bin'), readFileSync(bin));
      const binOnly = openHwdb([join(other, 'hwdb.bin')], [join(other, 'no-such-dir')]);
      expect(binOnly.lookup(ALIASES[1] as string).ID_VENDOR_FROM_DATABASE).toBe('Nokia Mobile Phones');
      // Neither: an empty database that says so.
      const none = openHwdb([join(other, 'none.bin')], [join(other, 'no-such-dir')]);
      expect(none.lookup(ALIASES[1] as string)).toEqual({});
      expect(none.source).toMatch(/no hwdb\.bin/);
    } finally {
      rmSync(other, { recursive: true, force: true });
    }
  });

  it('does not pass an unreadable directory off as an empty database', () => {
    const file = join(root, 'not-a-directory');
    writeFileSync(file, '');
    expect(() => hwdbTextFiles([join(file, 'x')])).not.toThrow(); // ENOTDIR: nothing there
    // A loop of symbolic links fails with ELOOP, for root too.
    symlinkSync(join(root, 'loop-b'), join(root, 'loop-a'));
    symlinkSync(join(root, 'loop-a'), join(root, 'loop-b'));
    expect(() => hwdbTextFiles([join(root, 'loop-a')])).toThrow(/ELOOP/);
  });
});

describe('machineHwdb', () => {
  it('keeps the database while it is used and lets it go after 30 s unused', () => {
    vi.useFakeTimers();
    try {
      useHwdb(undefined);
      const first = machineHwdb();
      vi.advanceTimersByTime(20_000);
      expect(machineHwdb()).toBe(first);
      vi.advanceTimersByTime(20_000);
      expect(machineHwdb()).toBe(first);
      vi.advanceTimersByTime(31_000);
      expect(machineHwdb()).not.toBe(first);
    } finally {
      vi.useRealTimers();
    }
  });
});
