// hwdb: properties from systemd's hardware database, looked up by modalias: vendor and
// model names, input quirks, sensor mounts, autosuspend... Read from the compiled hwdb.bin
// (hwdb-trie.ts) where one is up to date, else from the text files (hwdb-text.ts).
import { readFileSync, statSync } from 'node:fs';
import { fnmatchTester } from '../text/fnmatch.js';
import { HwdbText, HWDB_DIRS, hwdbTextFiles } from './hwdb-text.js';
import { HwdbFormatError, HwdbTrie } from './hwdb-trie.js';
import { deviceChain } from './device-chain.js';
import type { Builtin } from '../rules/builtin.js';

/** Where systemd and eudev look for the compiled database, in their order. */
export const HWDB_BIN_PATHS = ['/etc/systemd/hwdb/hwdb.bin', '/etc/udev/hwdb.bin', '/usr/lib/systemd/hwdb/hwdb.bin', '/usr/lib/udev/hwdb.bin'];
// The database is large (13 MB compiled, far more parsed): a daemon lets it go when it has
// not been asked for this long, and reads it again at the next lookup.
const IDLE_RELEASE_MS = 30_000;

export interface HardwareDatabase {
  lookup(modalias: string): Record<string, string>;
  /** What the lookups read, and why, for messages. */
  readonly source: string;
}

/**
 * The first hwdb.bin systemd would read, when no text file or directory is newer than it;
 * otherwise the text files, with the reason. udevd reads only hwdb.bin, stale or not; files
 * edited since `systemd-hwdb update` are read here rather than silently ignored.
 */
export function openHwdb(binPaths: readonly string[] = HWDB_BIN_PATHS, textDirs: readonly string[] = HWDB_DIRS): HardwareDatabase {
  const textFiles = hwdbTextFiles(textDirs);
  let why = 'no hwdb.bin';
  for (const bin of binPaths) {
    const binStat = statSync(bin, { throwIfNoEntry: false });
    if (binStat === undefined) continue;
    const newer = [...textDirs, ...textFiles].find((path) => (statSync(path, { throwIfNoEntry: false })?.mtimeMs ?? 0) > binStat.mtimeMs);
    if (newer !== undefined) {
      why = `${newer} is newer than ${bin}; run systemd-hwdb update`;
      break;
    }
    try {
      return new HwdbTrie(readFileSync(bin), bin);
    } catch (error) {
      why = error instanceof HwdbFormatError ? error.message : `${bin}: ${(error as Error).message}`;
      break;
    }
  }
  const db = HwdbText.load(textDirs);
  db.source = `the hwdb.d text files (${why})`;
  return db;
}

let shared: HardwareDatabase | undefined;
let pinned = false;
let release: NodeJS.Timeout | undefined;
/** The machine's hardware database, read on first use and let go after a while unused. */
export function machineHwdb(): HardwareDatabase {
  shared ??= openHwdb();
  if (!pinned) {
    release ??= setTimeout(() => {
      shared = undefined;
      release = undefined;
    }, IDLE_RELEASE_MS).unref();
    release.refresh();
  }
  return shared;
}
/** For tests: use this database instead of the machine's (undefined: the machine's again). */
export function useHwdb(db: HardwareDatabase | undefined): void {
  shared = db;
  pinned = db !== undefined;
}

function usbModalias(view: { attribute(name: string): string | undefined }): string | undefined {
  const vendor = view.attribute('idVendor')?.trim();
  const product = view.attribute('idProduct')?.trim();
  if (!vendor || !product) return undefined;
  return `usb:v${vendor.toUpperCase()}p${product.toUpperCase()}:${view.attribute('product')?.trim() ?? ''}`;
}

export const hwdb: Builtin = {
  name: 'hwdb',
  summary: 'properties from the hardware database (hwdb.d), by modalias',
  run(argv, context) {
    let subsystem: string | undefined;
    let prefix = '';
    let filter: ((key: string) => boolean) | undefined;
    let modalias: string | undefined;
    for (const arg of argv.slice(1)) {
      const option = /^--(subsystem|lookup-prefix|filter|device)=(.*)$/.exec(arg);
      if (option?.[1] === 'subsystem') subsystem = option[2];
      else if (option?.[1] === 'lookup-prefix') prefix = option[2] as string;
      else if (option?.[1] === 'filter') filter = fnmatchTester(option[2] as string);
      else if (option === null && !arg.startsWith('-')) modalias = arg;
    }
    const db = machineHwdb();
    const pick = (found: Record<string, string>) => Object.fromEntries(Object.entries(found).filter(([k]) => filter === undefined || filter(k)));
    if (modalias !== undefined) {
      const found = pick(db.lookup(prefix + modalias));
      return Object.keys(found).length > 0 ? { properties: found } : { failed: `hwdb: no entry for ${modalias} in ${db.source}` };
    }
    for (const link of deviceChain(context)) {
      if (subsystem !== undefined && link.subsystem !== subsystem) continue;
      const alias = (link.view === context.device ? context.properties.MODALIAS : undefined) ?? link.view.properties().MODALIAS ?? (link.devtype === 'usb_device' ? usbModalias(link.view) : undefined);
      if (alias === undefined) continue;
      const found = pick(db.lookup(prefix + alias));
      if (Object.keys(found).length > 0) return { properties: found };
    }
    return { failed: `hwdb: no entry for the device in ${db.source}` };
  },
};
