// OPTIONS+="watch" on a real block device: a loop device whose node (in the daemon's temp
// dev root) gets a file system written through it; closing it synthesises a `change`, the
// rules probe it again and the by-uuid link appears. Loop devices are not per network
// namespace: other tests' daemons see these events too, and ignore them.
import { execFileSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readlinkSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { canUseNamespaces, readHistory, startRuleDaemon, waitFor } from '../helpers/netns.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0).reverse()) cleanup();
});

const RULES = `# As Debian's 60-persistent-storage.rules does for disks, for loop devices only.
KERNEL!="loop[0-9]*", GOTO="end"
SUBSYSTEM!="block", GOTO="end"
ACTION=="remove", GOTO="end"
OPTIONS+="watch"
IMPORT{builtin}="blkid"
ENV{ID_FS_UUID_ENC}=="?*", SYMLINK+="disk/by-uuid/$env{ID_FS_UUID_ENC}"
LABEL="end"
`;

/**
 * A daemon with RULES and a loop device backed by a file of `size` in its temp dir
 * (`--partscan`: it takes partitions), once the daemon has made its node and watches it.
 */
async function watchedLoop(prefix: string, size: string, partscan = false) {
  const { daemon, dir } = await startRuleDaemon(prefix, cleanups);
  writeFileSync(join(dir, 'rules.d', '60-loop.rules'), RULES);
  expect((await daemon.cli(undefined, 'reload')).code).toBe(0);
  const backing = join(dir, 'disk.img');
  execFileSync('truncate', ['-s', size, backing]);
  const loop = execFileSync('losetup', ['--find', '--show', ...(partscan ? ['--partscan'] : []), backing], { encoding: 'utf8' }).trim();
  cleanups.push(() => execFileSync('losetup', ['-d', loop], { stdio: 'ignore' }));
  const name = loop.slice('/dev/'.length);
  const node = join(daemon.devRoot, name);
  // Attaching the backing file is a change of loopN: the daemon makes the node and watches it.
  await waitFor(() => existsSync(node) && daemon.logs.some((l) => l.msg === 'Rules matched' && String(l.devpath).endsWith(`/${name}`)), 20_000, `${name} processed`);
  // Recorded (committed) means its turn is over: the watch is in place.
  await waitFor(() => readHistory(daemon.dbPath).some((e) => e.devpath.endsWith(`/${name}`)), 10_000, 'recorded');
  return { daemon, name, node };
}

describe.skipIf(!canUseNamespaces())('OPTIONS+="watch"', () => {
  it('a file system written to a watched node gives it a by-uuid link, through a synthesised change', async () => {
    const { daemon, name, node } = await watchedLoop('watch', '16M');
    const before = readHistory(daemon.dbPath).filter((e) => e.devpath.endsWith(`/${name}`)).length;

    execFileSync('mkfs.ext4', ['-q', '-F', node]);
    const uuid = execFileSync('blkid', ['-s', 'UUID', '-o', 'value', node], { encoding: 'utf8' }).trim();
    const link = join(daemon.devRoot, 'disk', 'by-uuid', uuid);
    await waitFor(() => existsSync(link), 20_000, `the link ${link}`).catch((error) => {
      console.log(daemon.logs.filter((l) => String(l.devpath ?? '').includes(name) || String(l.msg).includes('watch') || String(l.msg).includes('synth')).map((l) => JSON.stringify(l)).join('\n'));
      throw error;
    });
    expect(readlinkSync(link)).toBe(`../../${name}`);

    // The link is made before the event is committed to the history: wait for that too.
    const events = () => readHistory(daemon.dbPath).filter((e) => e.devpath.endsWith(`/${name}`)).slice(before);
    await waitFor(() => events().some((e) => e.properties.SYNTH_ARG_WATCH === '1'), 10_000, 'the synthesised change recorded');
    const synthesised = events().find((e) => e.properties.SYNTH_ARG_WATCH === '1');
    expect(synthesised).toMatchObject({ action: 'change', source: 'kernel' });
    expect(daemon.logs.some((l) => l.msg === 'Device node written: change synthesised')).toBe(true);
    // blkid on the empty device found nothing (exit 2): not a failure, as in udev.
    expect(daemon.logs.filter((l) => String(l.msg).startsWith('Failed to apply program') && String(l.devpath).endsWith(`/${name}`))).toEqual([]);
  });

  it('a partition table written to a watched disk is read by the kernel (BLKRRPART), as udevd has it read', async () => {
    // --partscan: the loop device takes partitions, as a disk does (BLKRRPART succeeds).
    const { daemon, name, node } = await watchedLoop('watchpart', '16M', true);
    const before = readHistory(daemon.dbPath).length;

    // An MBR with one Linux partition (1 MiB to 9 MiB), written straight to the node: no
    // partitioning tool asks the kernel to read it, so only the watch can.
    const mbr = Buffer.alloc(512);
    mbr[446 + 4] = 0x83;
    mbr.writeUInt32LE(2048, 446 + 8);
    mbr.writeUInt32LE(16384, 446 + 12);
    mbr.writeUInt16LE(0xaa55, 510);
    const fd = openSync(node, 'r+');
    writeSync(fd, mbr, 0, mbr.length, 0);
    closeSync(fd);

    await waitFor(() => daemon.logs.some((l) => l.msg === 'Disk written: partition table re-read' && String(l.devpath).endsWith(`/${name}`)), 20_000, 'the re-read');
    const reread = daemon.logs.find((l) => l.msg === 'Disk written: partition table re-read')!;
    const events = () => readHistory(daemon.dbPath).slice(before);
    if (reread.partitions === 1) {
      // A kernel with MBR support: the partition appears with the kernel's own event.
      await waitFor(() => events().some((e) => e.action === 'add' && e.devpath.endsWith(`/${name}/${name}p1`)), 20_000, `${name}p1 added`);
    } else {
      // This project's VM kernel has no partition parsers (CONFIG_MSDOS_PARTITION is not set):
      // the table is read, no partition comes of it, and the disk is probed again, as udevd does.
      expect(reread.partitions).toBe(0);
      await waitFor(() => events().some((e) => e.devpath.endsWith(`/${name}`) && e.properties.SYNTH_ARG_WATCH === '1'), 20_000, 'the synthesised change');
    }
  });

  it('a watched disk that cannot be re-read (no partitions allowed) is probed again', async () => {
    const { daemon, name, node } = await watchedLoop('watchnopart', '8M');
    writeFileSync(node, Buffer.alloc(4096, 1), { flag: 'r+' });
    await waitFor(() => daemon.logs.some((l) => l.msg === 'Disk written: partition table not re-read' && String(l.devpath).endsWith(`/${name}`)), 20_000, 'the refused re-read');
    expect(daemon.logs.find((l) => l.msg === 'Disk written: partition table not re-read')!.reason).toBe('Invalid argument');
    await waitFor(() => daemon.logs.some((l) => l.msg === 'Device node written: change synthesised' && String(l.devpath).endsWith(`/${name}`)), 20_000, 'the synthesised change');
  });
});
