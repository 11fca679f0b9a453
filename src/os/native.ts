// The one loader of our native addons (binding.gyp: native/uevent_socket.c for netlink
// sockets and their poll watcher, native/system_calls.c for the system calls Node.js lacks).
// Each is loaded on its first use, so importing a module that names one loads nothing:
// the public client, which needs neither, never calls process.dlopen.
import { createRequire } from 'node:module';

/** native/uevent_socket.c: netlink sockets (uevents, routes) and the fd watcher. */
export interface NetlinkAddon {
  open(protocol: number, groups: number, receiveBufferBytes: number): { fd: number; rcvbuf: number; forced: boolean; port: number };
  recv(fd: number, buffer: Buffer, meta: Int32Array, slotBytes: number): number;
  watch(fd: number, onReadable: (status: number) => void): object;
  start(handle: object): void;
  stop(handle: object): void;
  close(handle: object): void;
  send(fd: number, buffer: Buffer, groups: number): number;
}

/** native/system_calls.c. */
export interface SystemCallsAddon {
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
  mknod(path: string, isBlock: number, mode: number, major: number, minor: number): void;
  ethtoolDriver(ifname: string): string | null;
  readAttribute(path: string): string | number;
  openAttribute(path: string): number;
  preadAttribute(fd: number): string | number;
  closeFd(fd: number): void;
}

const load = createRequire(import.meta.url);
let netlink: NetlinkAddon | undefined;
let systemCalls: SystemCallsAddon | undefined;

/** The netlink addon, loaded on first use. */
export function netlinkAddon(): NetlinkAddon {
  return (netlink ??= load('../../build/Release/uevent_socket.node') as NetlinkAddon);
}

/** The system-calls addon, loaded on first use. */
export function systemCallsAddon(): SystemCallsAddon {
  return (systemCalls ??= load('../../build/Release/system_calls.node') as SystemCallsAddon);
}
