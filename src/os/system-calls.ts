// The few system calls Node.js lacks (native/system_calls.c, loaded by native.ts): peer
// credentials of a unix socket, sd_notify's datagram, a lock file held for the life of the
// process, udev's SEQPACKET control socket, inotify, BLKRRPART, mknod and ethtool's driver.
import { readFileSync, writeSync, ftruncateSync } from 'node:fs';
import type { Socket } from 'node:net';
import { HotplugError } from '../errors.js';
import { systemCallsAddon } from './native.js';


export interface PeerCredentials {
  pid: number;
  uid: number;
  gid: number;
}

/** Who is at the other end of a unix socket connection (undefined if it cannot be told). */
export function peerCredentials(socket: Socket): PeerCredentials | undefined {
  const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) return undefined;
  try {
    return systemCallsAddon().peercred(fd);
  } catch {
    return undefined;
  }
}

/** The CPUID hypervisor signature ("KVMKVMKVM"), "" when unnamed, null when none (or not x86). */
export function hypervisorSignature(): string | null {
  return systemCallsAddon().hypervisor();
}

/** A SOCK_SEQPACKET socket listening at `path` (udev's control socket); throws on failure. */
export function seqpacketListen(path: string): number {
  return systemCallsAddon().seqpacketListen(path);
}

/** The next waiting connection with its peer's uid, or null. */
export function acceptPeer(fd: number): { fd: number; uid: number; pid: number } | null {
  return systemCallsAddon().acceptPeer(fd);
}

/** One message into `buffer` with its sender's uid (-1: none passed), or null when none waits; size 0 when the peer closed. */
export function recvMessage(fd: number, buffer: Buffer): { size: number; uid: number } | null {
  return systemCallsAddon().recvMessage(fd, buffer);
}

/** inotify for device nodes: close-after-write events (udev's OPTIONS+="watch"). */
export const inotify = {
  init: (): number => systemCallsAddon().inotifyInit(),
  watchClose: (fd: number, path: string): number => systemCallsAddon().inotifyWatchClose(fd, path),
  unwatch: (fd: number, wd: number): void => systemCallsAddon().inotifyUnwatch(fd, wd),
  read: (fd: number): [number, number][] => systemCallsAddon().inotifyRead(fd),
};

/** BLKRRPART on a disk's node, under an exclusive flock: null when the table was re-read, else why not. */
export function rereadPartitions(devnode: string): string | null {
  return systemCallsAddon().rereadPartitions(devnode);
}

/** Sends one sd_notify message; throws when the socket cannot be reached. */
export function sendNotify(socketPath: string, message: string): void {
  systemCallsAddon().notify(socketPath, message);
}

/**
 * Takes an exclusive lock on `path` (created if needed) for as long as this process
 * lives, and writes our pid into it; tells who holds it when another process does.
 */
export function acquireLock(path: string, what: string): void {
  let fd: number;
  try {
    fd = systemCallsAddon().lock(path);
  } catch (error) {
    if ((error as { code?: string }).code === 'EWOULDBLOCK') {
      let holder = '';
      try {
        holder = readFileSync(path, 'utf8').trim();
      } catch {
        // unreadable: say nothing about the holder
      }
      throw new HotplugError('ELOCKED', `Another hotplugd${holder ? ` (pid ${holder})` : ''} is already using ${what}; stop it first, or give this one its own --db and --control`);
    }
    throw new HotplugError('ELOCK', `Failed to lock ${path}: ${(error as Error).message}`, { cause: error });
  }
  ftruncateSync(fd, 0);
  writeSync(fd, `${process.pid}\n`, 0);
}

/** mknod(2): a device node where devtmpfs did not make one (throws with errno's code). */
export function makeNode(path: string, isBlock: boolean, mode: number, major: number, minor: number): void {
  systemCallsAddon().mknod(path, isBlock ? 1 : 0, mode, major, minor);
}

/** The interface's driver as ethtool reports it ("veth", "virtio_net"), or null when it has none. */
export function ethtoolDriver(ifname: string): string | null {
  return systemCallsAddon().ethtoolDriver(ifname);
}
