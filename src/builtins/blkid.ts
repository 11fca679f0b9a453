// blkid: file system, partition table and RAID signatures of a block device, through the
// blkid program in probe mode (`blkid -p -o udev`), whose output is udev's own
// ID_FS_* / ID_PART_* properties. It reads the device, so it runs like an import program.
import { existsSync } from 'node:fs';
import type { Builtin } from '../rules/builtin.js';

const CANDIDATES = ['/usr/sbin/blkid', '/sbin/blkid', '/usr/bin/blkid', '/bin/blkid'];

// What udev v252's builtin exports of libblkid's values; the program prints more
// (ID_FS_BLOCK_SIZE, ID_FS_SEC_TYPE, ID_FS_LABEL_FATBOOT, ...), which udev leaves out.
const EXPORTED_FS = new Set(['TYPE', 'USAGE', 'VERSION', 'UUID', 'UUID_ENC', 'UUID_SUB', 'UUID_SUB_ENC', 'LABEL', 'LABEL_ENC', 'SYSTEM_ID', 'PUBLISHER_ID', 'APPLICATION_ID', 'BOOT_SYSTEM_ID', 'VOLUME_ID', 'LOGICAL_VOLUME_ID', 'VOLUME_SET_ID', 'DATA_PREPARER_ID']);

/** A property of `blkid -o udev`'s output that udev's builtin exports too. */
export function exportedByUdev(name: string): boolean {
  if (name.startsWith('ID_FS_')) return EXPORTED_FS.has(name.slice(6));
  return name === 'ID_PART_TABLE_TYPE' || name === 'ID_PART_TABLE_UUID' || name.startsWith('ID_PART_ENTRY_');
}
let found: string | null | undefined;

function blkidProgram(): string | undefined {
  if (found === undefined) found = CANDIDATES.find((p) => existsSync(p)) ?? null;
  return found ?? undefined;
}

export const blkid: Builtin = {
  name: 'blkid',
  summary: 'probe a block device for file systems and partition tables (the blkid program)',
  run(argv, context) {
    if (context.devnode === null) return { failed: 'blkid: the device has no device node' };
    const program = blkidProgram();
    if (program === undefined) return { failed: 'blkid: the blkid program is not installed (util-linux)' };
    const args = ['-p', '-o', 'udev'];
    for (const option of argv.slice(1)) {
      const offset = /^(?:-o|--offset)=?(\d+)$/.exec(option);
      if (offset) args.push('-O', offset[1] as string);
      else if (option === '--noraid') args.push('--noraid');
      // --hint=... has no equivalent in the blkid program; it only speeds up probing.
    }
    // blkid exits 2 when it finds no signature: nothing to report, as udev's builtin.
    return { program: [program, ...args, context.devnode], emptyExitCodes: [2], keep: exportedByUdev };
  },
};
