// The few system calls Node.js lacks (native/system_calls.c): peer credentials of a unix
// socket, sd_notify's datagram, and a lock file held for the life of the process.
import { createRequire } from 'node:module';
import { readFileSync, writeSync, ftruncateSync } from 'node:fs';
import type { Socket } from 'node:net';
import { HotplugError } from '../errors.js';

interface SystemCalls {
  peercred(fd: number): { pid: number; uid: number; gid: number };
  notify(path: string, message: string): void;
  lock(path: string): number;
  hypervisor(): string | null;
  seqpacketListen(path: string): number;
  acceptPeer(fd: number): { fd: number; uid: number; pid: number } | null;
  recvMessage(fd: number, buffer: Buffer): { size: number; uid: number } | null;
  inotifyInit(): number;
  inotifyWatchClose(fd: number, path: string): number;
  inotifyUnwatch(fd: number, wd: number): void;
  inotifyRead(fd: number): [number, number][];
  rereadPartitions(path: string): string | null;
}

const native = createRequire(import.meta.url)('../../build/Release/system_calls.node') as SystemCalls;

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
    return native.peercred(fd);
  } catch {
    return undefined;
  }
}

/** The CPUID hypervisor signature ("KVMKVMKVM"), "" when unnamed, null when none (or not x86). */
export function hypervisorSignature(): string | null {
  return native.hypervisor();
}

/** A SOCK_SEQPACKET socket listening at `path` (udev's control socket); throws on failure. */
export function seqpacketListen(path: string): number {
  return native.seqpacketListen(path);
}

/** The next waiting connection with its peer's uid, or null. */
export function acceptPeer(fd: number): { fd: number; uid: number; pid: number } | null {
  return native.acceptPeer(fd);
}

/** One message into `buffer` with its sender's uid (-1: none passed), or null when none waits; size 0 when the peer closed. */
export function recvMessage(fd: number, buffer: Buffer): { size: number; uid: number } | null {
  return native.recvMessage(fd, buffer);
}

/** inotify for device nodes: close-after-write events (udev's OPTIONS+="watch"). */
export const inotify = {
  init: (): number => native.inotifyInit(),
  watchClose: (fd: number, path: string): number => native.inotifyWatchClose(fd, path),
  unwatch: (fd: number, wd: number): void => native.inotifyUnwatch(fd, wd),
  read: (fd: number): [number, number][] => native.inotifyRead(fd),
};

/** BLKRRPART on a disk's node, under an exclusive flock: null when the table was re-read, else why not. */
export function rereadPartitions(devnode: string): string | null {
  return native.rereadPartitions(devnode);
}

/** Sends one sd_notify message; throws when the socket cannot be reached. */
export function sendNotify(socketPath: string, message: string): void {
  native.notify(socketPath, message);
}

/**
 * Takes an exclusive lock on `path` (created if needed) for as long as this process
 * lives, and writes our pid into it; tells who holds it when another process does.
 */
export function acquireLock(path: string, what: string): void {
  let fd: number;
  try {
    fd = native.lock(path);
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
