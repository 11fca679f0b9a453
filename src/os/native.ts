// The one loader of our native addon (binding.gyp: native/uevent_socket.c for netlink
// sockets and their poll watcher, native/system_calls.c for the system calls Node.js lacks,
// one shared object). node-gyp-build finds it: a build from source (build/Release) where
// there is one, else the package's prebuilt one for this platform and architecture
// (prebuilds/linux-x64, linux-arm64, linux-arm with armv7). It is loaded on first use, so
// importing a module that names it loads nothing: the public client never calls process.dlopen.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/** native/uevent_socket.c: netlink sockets (uevents, routes) and the fd watcher. */
export interface NetlinkAddon {
  open(protocol: number, groups: number, receiveBufferBytes: number): { fd: number; rcvbuf: number; forced: boolean; port: number };
  recv(fd: number, buffer: Buffer, meta: Int32Array, slotBytes: number): number;
  watch(fd: number, onReadable: (status: number) => void): object;
  start(handle: object): void;
  stop(handle: object): void;
  close(handle: object): void;
  send(fd: number, buffer: Buffer, groups: number): number;
  /** native/broadcast_batch.c: sendmmsg on libuv's pool; (offset, length, groups) per datagram; the count sent or -errno. */
  sendBatch(fd: number, buffer: Buffer, table: Uint32Array): Promise<number>;
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
  /** native/kernel_modules.c: finit_module on libuv's pool; 0 or -errno (EEXIST: loaded already). Flags: 4 for a compressed file. */
  insertModule(path: string, params: string, flags: number): Promise<number>;
}

const require = createRequire(import.meta.url);
// The package's root: this module is dist/os/native.js, or inside dist/cli/hotplugd.cjs.
const PACKAGE_ROOT = fileURLToPath(new URL('../..', import.meta.url));
let addon: (NetlinkAddon & SystemCallsAddon) | undefined;

/** The addon, loaded on first use. */
export function nativeAddon(): NetlinkAddon & SystemCallsAddon {
  return (addon ??= (require('node-gyp-build') as (dir: string) => NetlinkAddon & SystemCallsAddon)(PACKAGE_ROOT));
}

/** Its netlink part. */
export function netlinkAddon(): NetlinkAddon {
  return nativeAddon();
}

/** Its system-calls part. */
export function systemCallsAddon(): SystemCallsAddon {
  return nativeAddon();
}
