// A board in a box: a QEMU guest (software CPU) running Debian's own kernel, whose USB
// devices the host plugs and unplugs over QMP as a user plugs a stick into a board.
//   - The kernel comes from Debian's linux-image package, extracted into a cache (the host's
//     /boot is never touched); a busybox initramfs loads virtio-9p and overlayfs.
//   - The host's root is shared read-only and becomes the guest's root under a tmpfs overlay:
//     the guest runs the host's node, hotplugd's build, udevd and Debian's rules as they are.
//   - The run's folder is shared read-write at /board: the host writes cmd-N.sh there and the
//     guest agent (test/board/guest-agent.sh) runs each, leaving its output and exit status.
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const BOARD_FILES = join(import.meta.dirname, '..', 'board');
export const BOARD_CACHE = process.env.HOTPLUGD_BOARD_CACHE ?? '/var/cache/hotplugd-board';
/** Modules the initramfs loads to reach the host's root (with what they depend on). */
const INITRAMFS_MODULES = ['virtio_pci', '9pnet_virtio', '9p', 'overlay'];

/** The modules' files in load order (dependencies first), from modules.dep. */
function loadOrder(modulesDir: string, names: string[]): string[] {
  const deps = new Map<string, string[]>();
  for (const line of readFileSync(join(modulesDir, 'modules.dep'), 'utf8').split('\n')) {
    const colon = line.indexOf(':');
    if (colon > 0) deps.set(line.slice(0, colon), line.slice(colon + 1).trim().split(/\s+/).filter(Boolean));
  }
  const order: string[] = [];
  const add = (file: string): void => {
    if (order.includes(file)) return;
    for (const dep of [...(deps.get(file) ?? [])].reverse()) add(dep);
    order.push(file);
  };
  for (const name of names) {
    const file = [...deps.keys()].find((f) => f.endsWith(`/${name}.ko`));
    if (file === undefined) throw new Error(`board: module ${name} is not in the kernel package`);
    add(file);
  }
  return order;
}

export function canRunBoard(): boolean {
  return process.getuid?.() === 0 && existsSync('/usr/bin/qemu-system-x86_64') && existsSync('/bin/busybox');
}

export interface GuestKernel {
  version: string;
  vmlinuz: string;
  initrd: string;
  modules: string;
}

/** `apt-cache ARGS`; with no package lists yet (a fresh machine), they are fetched first. */
function aptCache(args: string[]): string {
  try {
    const out = execFileSync('apt-cache', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    if (out.includes('Depends:')) return out;
  } catch {
    // no lists: fetched below
  }
  execFileSync('apt-get', ['update', '-qq'], { stdio: 'pipe' });
  return execFileSync('apt-cache', args, { encoding: 'utf8' });
}

/** Debian's kernel and our initramfs, built once into the cache. */
export function guestKernel(cache = BOARD_CACHE): GuestKernel {
  const depends = aptCache(['depends', 'linux-image-amd64']);
  const pkg = /Depends: (linux-image-[0-9][^\s]*-amd64)/.exec(depends)?.[1];
  if (pkg === undefined) throw new Error(`board: no kernel package in 'apt-cache depends linux-image-amd64':\n${depends}`);
  const version = pkg.slice('linux-image-'.length);
  const dir = join(cache, version);
  const kernel = { version, vmlinuz: join(dir, 'root/boot', `vmlinuz-${version}`), initrd: join(dir, 'initrd.cpio.gz'), modules: join(dir, 'root/lib/modules') };
  const initSource = readFileSync(join(BOARD_FILES, 'init.sh'), 'utf8');
  const stamp = join(dir, 'stamp');
  if (existsSync(stamp) && readFileSync(stamp, 'utf8') === initSource) return kernel;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  execFileSync('apt-get', ['download', pkg], { cwd: dir, stdio: 'pipe' });
  const deb = readdirSync(dir).find((f) => f.endsWith('.deb'));
  if (deb === undefined) throw new Error(`board: apt-get download ${pkg} left no .deb`);
  execFileSync('dpkg-deb', ['-x', deb, 'root'], { cwd: dir });
  rmSync(join(dir, deb));
  // The initramfs: static busybox, the init script and the modules to reach the host's root.
  const initramfs = join(dir, 'initramfs');
  for (const sub of ['bin', 'modules', 'proc', 'sys', 'dev']) mkdirSync(join(initramfs, sub), { recursive: true });
  const dynamic = spawnSync('ldd', ['/bin/busybox']).status === 0;
  if (dynamic) throw new Error('board: /bin/busybox is linked dynamically; the initramfs needs busybox-static (apt-get install busybox-static)');
  copyFileSync('/bin/busybox', join(initramfs, 'bin/busybox'));
  chmodSync(join(initramfs, 'bin/busybox'), 0o755);
  writeFileSync(join(initramfs, 'init'), initSource, { mode: 0o755 });
  // The package has no modules.dep (its postinst makes it): the guest's modprobe needs one.
  execFileSync('depmod', ['-b', join(dir, 'root'), version]);
  const order = loadOrder(join(kernel.modules, version), INITRAMFS_MODULES);
  order.forEach((file, i) => copyFileSync(join(kernel.modules, version, file), join(initramfs, 'modules', `${String(i).padStart(2, '0')}-${file.split('/').pop()}`)));
  execFileSync('sh', ['-c', `cd "${initramfs}" && find . | busybox cpio -o -H newc 2>/dev/null | gzip -1 > "${kernel.initrd}"`]);
  writeFileSync(stamp, initSource);
  return kernel;
}

interface QmpReply {
  return?: unknown;
  error?: { class: string; desc: string };
  event?: string;
  data?: Record<string, unknown>;
}

/** QEMU's machine protocol: one command at a time, events noted. */
class Qmp {
  readonly events: QmpReply[] = [];
  #socket: Socket;
  #buffer = '';
  #waiting: ((reply: QmpReply) => void)[] = [];

  private constructor(socket: Socket) {
    this.#socket = socket;
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      this.#buffer += chunk;
      let nl: number;
      while ((nl = this.#buffer.indexOf('\n')) >= 0) {
        const line = this.#buffer.slice(0, nl).trim();
        this.#buffer = this.#buffer.slice(nl + 1);
        if (line === '') continue;
        const message = JSON.parse(line) as QmpReply & { QMP?: unknown };
        if (message.QMP !== undefined) continue;
        if (message.event !== undefined) this.events.push(message);
        else this.#waiting.shift()?.(message);
      }
    });
  }

  static async open(path: string): Promise<Qmp> {
    const socket = await new Promise<Socket>((resolve, reject) => {
      const s = connect(path, () => resolve(s));
      s.once('error', reject);
    });
    const qmp = new Qmp(socket);
    await qmp.execute('qmp_capabilities');
    return qmp;
  }

  execute(command: string, args?: Record<string, unknown>): Promise<unknown> {
    return new Promise((resolve, reject) => {
      this.#waiting.push((reply) => (reply.error ? reject(new Error(`QMP ${command}: ${reply.error.desc}`)) : resolve(reply.return)));
      this.#socket.write(`${JSON.stringify({ execute: command, ...(args ? { arguments: args } : {}) })}\n`);
    });
  }

  close(): void {
    this.#socket.destroy();
  }
}

export interface BoardOptions {
  /** Raw disk images attachable as USB sticks: drive id → image path. */
  drives?: Record<string, string>;
  memoryMiB?: number;
  cpus?: number;
  /** Host folders kept across boots, mounted read-write in the guest (guest path → host path): a board's flash, say /var/cache/hotplugd. */
  persist?: Record<string, string>;
}

export class Board {
  readonly dir: string;
  #qemu: ChildProcess;
  #qmp: Qmp | undefined;
  #next = 1;
  #exited: Promise<number | null>;

  private constructor(dir: string, qemu: ChildProcess) {
    this.dir = dir;
    this.#qemu = qemu;
    this.#exited = new Promise((resolve) => qemu.once('exit', (code) => resolve(code)));
  }

  /** Boots a guest; resolves when its agent takes commands. */
  static async boot(options: BoardOptions = {}): Promise<Board> {
    const kernel = guestKernel();
    const dir = mkdtempSync(join(tmpdir(), 'hotplugd-board-'));
    copyFileSync(join(BOARD_FILES, 'guest-agent.sh'), join(dir, 'guest-agent.sh'));
    const persisted = Object.entries(options.persist ?? {});
    // Read by the guest agent: a 9p tag and where it goes, a line each.
    writeFileSync(join(dir, 'mounts'), persisted.map(([guest], n) => `persist${n} ${guest}\n`).join(''));
    const share = (path: string, tag: string, readonly: boolean) =>
      ['-virtfs', `local,path=${path},mount_tag=${tag},security_model=none,multidevs=remap${readonly ? ',readonly=on' : ''}`];
    const args = [
      '-machine', 'q35', '-accel', 'tcg', '-cpu', 'max', '-smp', String(options.cpus ?? 2), '-m', String(options.memoryMiB ?? 1536),
      '-display', 'none', '-monitor', 'none', '-no-reboot', '-serial', `file:${join(dir, 'console.log')}`,
      '-kernel', kernel.vmlinuz, '-initrd', kernel.initrd,
      '-append', 'console=ttyS0 panic=-1 quiet loglevel=4 net.ifnames=0',
      ...share('/', 'hostroot', true), ...share(kernel.modules, 'modules', true), ...share(dir, 'board', false),
      ...persisted.flatMap(([, host], n) => share(host, `persist${n}`, false)),
      '-device', 'qemu-xhci,id=xhci,p2=8,p3=8',
      '-qmp', `unix:${join(dir, 'qmp.sock')},server=on,wait=off`,
    ];
    for (const [id, image] of Object.entries(options.drives ?? {})) args.push('-drive', `if=none,id=${id},file=${image},format=raw`);
    const qemu = spawn('qemu-system-x86_64', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    qemu.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    qemu.stdout!.resume();
    const board = new Board(dir, qemu);
    try {
      const deadline = Date.now() + 180_000;
      while (!existsSync(join(dir, 'agent-ready'))) {
        if (qemu.exitCode !== null) throw new Error(`board: QEMU exited (${qemu.exitCode}): ${stderr}\n${board.console()}`);
        if (Date.now() > deadline) throw new Error(`board: the guest did not come up in 180 s:\n${board.console()}`);
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      board.#qmp = await Qmp.open(join(dir, 'qmp.sock'));
    } catch (error) {
      await board.close();
      throw error;
    }
    return board;
  }

  /** What the guest's kernel printed. */
  console(): string {
    try {
      return readFileSync(join(this.dir, 'console.log'), 'utf8');
    } catch {
      return '';
    }
  }

  /** Runs `script` (sh) in the guest; resolves with its exit status and output. */
  async run(script: string, timeoutMs = 120_000): Promise<{ code: number; out: string }> {
    const n = this.#next++;
    writeFileSync(join(this.dir, `cmd-${n}.sh.tmp`), script);
    execFileSync('mv', [join(this.dir, `cmd-${n}.sh.tmp`), join(this.dir, `cmd-${n}.sh`)]);
    const done = join(this.dir, `cmd-${n}.done`);
    const deadline = Date.now() + timeoutMs;
    while (!existsSync(done)) {
      if (this.#qemu.exitCode !== null) throw new Error(`board: the guest is gone (QEMU exit ${this.#qemu.exitCode}):\n${this.console().slice(-4000)}`);
      if (Date.now() > deadline) throw new Error(`board: command ${n} did not end in ${timeoutMs} ms:\n${script}\n${this.#output(n)}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    return { code: Number(readFileSync(done, 'utf8')), out: this.#output(n) };
  }

  /** Like run(), but fails unless the script exits 0. */
  async sh(script: string, timeoutMs?: number): Promise<string> {
    const { code, out } = await this.run(script, timeoutMs);
    if (code !== 0) throw new Error(`board: exit ${code}:\n${script}\n${out}`);
    return out;
  }

  /** Plugs a QEMU USB device into the xhci controller (`port` 1..16). */
  async plug(id: string, driver: string, port: number, properties: Record<string, unknown> = {}): Promise<void> {
    await this.#qmp!.execute('device_add', { driver, id, bus: 'xhci.0', port: String(port), ...properties });
  }

  /** Adds a character backend for usb-serial: a ring buffer, which counts as open (a null backend never does, and QEMU attaches the adapter only once its backend is open). */
  async chardev(id: string): Promise<void> {
    await this.#qmp!.execute('chardev-add', { id, backend: { type: 'ringbuf', data: { size: 4096 } } });
  }

  /** Adds a user-mode network backend (for usb-net). */
  async netdev(id: string): Promise<void> {
    await this.#qmp!.execute('netdev_add', { type: 'user', id });
  }

  /** Unplugs a device; resolves once QEMU says it is gone. */
  async unplug(id: string): Promise<void> {
    const seen = this.#qmp!.events.length;
    await this.#qmp!.execute('device_del', { id });
    const deadline = Date.now() + 30_000;
    while (!this.#qmp!.events.slice(seen).some((e) => e.event === 'DEVICE_DELETED' && e.data?.device === id)) {
      if (Date.now() > deadline) throw new Error(`board: ${id} was not deleted`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  async close(): Promise<void> {
    this.#qmp?.close();
    if (this.#qemu.exitCode === null) this.#qemu.kill('SIGKILL');
    await this.#exited;
    rmSync(this.dir, { recursive: true, force: true });
  }

  #output(n: number): string {
    try {
      return readFileSync(join(this.dir, `cmd-${n}.out`), 'utf8');
    } catch {
      return '';
    }
  }
}

/**
 * A raw GPT disk image for a USB stick: an ext4 partition and a vfat one, each with its
 * label, UUID, partition label and partition UUID fixed, so links can be compared by name.
 */
export function stickImage(path: string): void {
  const MiB = 1024 * 1024;
  execFileSync('truncate', ['-s', String(64 * MiB), path]);
  execFileSync('sgdisk', ['--clear', '--disk-guid=5e1f9c2a-7d3b-4c8e-9a41-2b6d0f8e7c11',
    '--new=1:2048:+24M', '--typecode=1:8300', '--change-name=1:board-data', '--partition-guid=1:0c7a8f2e-1b3d-4e5f-8a6b-9c0d1e2f3a4b',
    '--new=2:0:+24M', '--typecode=2:0700', '--change-name=2:board-boot', '--partition-guid=2:7d1e2f3a-4b5c-4d6e-9f70-8a9b0c1d2e3f', path], { stdio: 'pipe' });
  const start = (n: number) => Number(/First sector: (\d+)/.exec(execFileSync('sgdisk', [`--info=${n}`, path], { encoding: 'utf8' }))![1]) * 512;
  const part = `${path}.part`;
  try {
    execFileSync('mkfs.ext4', ['-q', '-F', '-L', 'BOARDDATA', '-U', '3f1a2b3c-4d5e-4f60-8172-93a4b5c6d7e8', part, '24M']);
    execFileSync('dd', [`if=${part}`, `of=${path}`, 'bs=1M', `seek=${start(1) / MiB}`, 'conv=notrunc', 'status=none']);
    rmSync(part);
    execFileSync('mkfs.vfat', ['-C', '-n', 'BOARDBOOT', '-i', '1a2b3c4d', part, String(24 * 1024)], { stdio: 'pipe' });
    execFileSync('dd', [`if=${part}`, `of=${path}`, 'bs=1M', `seek=${start(2) / MiB}`, 'conv=notrunc', 'status=none']);
  } finally {
    rmSync(part, { force: true });
  }
}
