// test/helpers/board.ts
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
var BOARD_FILES = join(import.meta.dirname, "..", "board");
var BOARD_CACHE = process.env.HOTPLUGD_BOARD_CACHE ?? "/var/cache/hotplugd-board";
var INITRAMFS_MODULES = ["virtio_pci", "9pnet_virtio", "9p", "overlay"];
function loadOrder(modulesDir, names) {
  const deps = /* @__PURE__ */ new Map();
  for (const line of readFileSync(join(modulesDir, "modules.dep"), "utf8").split("\n")) {
    const colon = line.indexOf(":");
    if (colon > 0) deps.set(line.slice(0, colon), line.slice(colon + 1).trim().split(/\s+/).filter(Boolean));
  }
  const order = [];
  const add = (file) => {
    if (order.includes(file)) return;
    for (const dep of [...deps.get(file) ?? []].reverse()) add(dep);
    order.push(file);
  };
  for (const name of names) {
    const file = [...deps.keys()].find((f) => f.endsWith(`/${name}.ko`));
    if (file === void 0) throw new Error(`board: module ${name} is not in the kernel package`);
    add(file);
  }
  return order;
}
function aptCache(args) {
  try {
    const out = execFileSync("apt-cache", args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    if (out.includes("Depends:")) return out;
  } catch {
  }
  execFileSync("apt-get", ["update", "-qq"], { stdio: "pipe" });
  return execFileSync("apt-cache", args, { encoding: "utf8" });
}
function guestKernel(cache = BOARD_CACHE) {
  const depends = aptCache(["depends", "linux-image-amd64"]);
  const pkg = /Depends: (linux-image-[0-9][^\s]*-amd64)/.exec(depends)?.[1];
  if (pkg === void 0) throw new Error(`board: no kernel package in 'apt-cache depends linux-image-amd64':
${depends}`);
  const version = pkg.slice("linux-image-".length);
  const dir = join(cache, version);
  const kernel = { version, vmlinuz: join(dir, "root/boot", `vmlinuz-${version}`), initrd: join(dir, "initrd.cpio.gz"), modules: join(dir, "root/lib/modules") };
  const initSource = readFileSync(join(BOARD_FILES, "init.sh"), "utf8");
  const stamp = join(dir, "stamp");
  if (existsSync(stamp) && readFileSync(stamp, "utf8") === initSource) return kernel;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  execFileSync("apt-get", ["download", pkg], { cwd: dir, stdio: "pipe" });
  const deb = readdirSync(dir).find((f) => f.endsWith(".deb"));
  if (deb === void 0) throw new Error(`board: apt-get download ${pkg} left no .deb`);
  execFileSync("dpkg-deb", ["-x", deb, "root"], { cwd: dir });
  rmSync(join(dir, deb));
  const initramfs = join(dir, "initramfs");
  for (const sub of ["bin", "modules", "proc", "sys", "dev"]) mkdirSync(join(initramfs, sub), { recursive: true });
  const dynamic = spawnSync("ldd", ["/bin/busybox"]).status === 0;
  if (dynamic) throw new Error("board: /bin/busybox is linked dynamically; the initramfs needs busybox-static (apt-get install busybox-static)");
  copyFileSync("/bin/busybox", join(initramfs, "bin/busybox"));
  chmodSync(join(initramfs, "bin/busybox"), 493);
  writeFileSync(join(initramfs, "init"), initSource, { mode: 493 });
  execFileSync("depmod", ["-b", join(dir, "root"), version]);
  const order = loadOrder(join(kernel.modules, version), INITRAMFS_MODULES);
  order.forEach((file, i) => copyFileSync(join(kernel.modules, version, file), join(initramfs, "modules", `${String(i).padStart(2, "0")}-${file.split("/").pop()}`)));
  execFileSync("sh", ["-c", `cd "${initramfs}" && find . | busybox cpio -o -H newc 2>/dev/null | gzip -1 > "${kernel.initrd}"`]);
  writeFileSync(stamp, initSource);
  return kernel;
}
var Qmp = class _Qmp {
  events = [];
  #socket;
  #buffer = "";
  #waiting = [];
  constructor(socket) {
    this.#socket = socket;
    socket.setEncoding("utf8");
    socket.on("data", (chunk) => {
      this.#buffer += chunk;
      let nl;
      while ((nl = this.#buffer.indexOf("\n")) >= 0) {
        const line = this.#buffer.slice(0, nl).trim();
        this.#buffer = this.#buffer.slice(nl + 1);
        if (line === "") continue;
        const message = JSON.parse(line);
        if (message.QMP !== void 0) continue;
        if (message.event !== void 0) this.events.push(message);
        else this.#waiting.shift()?.(message);
      }
    });
  }
  static async open(path) {
    const socket = await new Promise((resolve, reject) => {
      const s = connect(path, () => resolve(s));
      s.once("error", reject);
    });
    const qmp = new _Qmp(socket);
    await qmp.execute("qmp_capabilities");
    return qmp;
  }
  execute(command, args) {
    return new Promise((resolve, reject) => {
      this.#waiting.push((reply) => reply.error ? reject(new Error(`QMP ${command}: ${reply.error.desc}`)) : resolve(reply.return));
      this.#socket.write(`${JSON.stringify({ execute: command, ...args ? { arguments: args } : {} })}
`);
    });
  }
  close() {
    this.#socket.destroy();
  }
};
var Board = class _Board {
  dir;
  #qemu;
  #qmp;
  #next = 1;
  #exited;
  constructor(dir, qemu) {
    this.dir = dir;
    this.#qemu = qemu;
    this.#exited = new Promise((resolve) => qemu.once("exit", (code) => resolve(code)));
  }
  /** Boots a guest; resolves when its agent takes commands. */
  static async boot(options = {}) {
    const kernel = guestKernel();
    const dir = mkdtempSync(join(tmpdir(), "hotplugd-board-"));
    copyFileSync(join(BOARD_FILES, "guest-agent.sh"), join(dir, "guest-agent.sh"));
    const share = (path, tag, readonly) => ["-virtfs", `local,path=${path},mount_tag=${tag},security_model=none,multidevs=remap${readonly ? ",readonly=on" : ""}`];
    const args = [
      "-machine",
      "q35",
      "-accel",
      "tcg",
      "-cpu",
      "max",
      "-smp",
      String(options.cpus ?? 2),
      "-m",
      String(options.memoryMiB ?? 1536),
      "-display",
      "none",
      "-monitor",
      "none",
      "-no-reboot",
      "-serial",
      `file:${join(dir, "console.log")}`,
      "-kernel",
      kernel.vmlinuz,
      "-initrd",
      kernel.initrd,
      "-append",
      "console=ttyS0 panic=-1 quiet loglevel=4 net.ifnames=0",
      ...share("/", "hostroot", true),
      ...share(kernel.modules, "modules", true),
      ...share(dir, "board", false),
      "-device",
      "qemu-xhci,id=xhci,p2=8,p3=8",
      "-qmp",
      `unix:${join(dir, "qmp.sock")},server=on,wait=off`
    ];
    for (const [id, image] of Object.entries(options.drives ?? {})) args.push("-drive", `if=none,id=${id},file=${image},format=raw`);
    const qemu = spawn("qemu-system-x86_64", args, { stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    qemu.stderr.on("data", (chunk) => stderr += chunk.toString());
    qemu.stdout.resume();
    const board2 = new _Board(dir, qemu);
    try {
      const deadline = Date.now() + 18e4;
      while (!existsSync(join(dir, "agent-ready"))) {
        if (qemu.exitCode !== null) throw new Error(`board: QEMU exited (${qemu.exitCode}): ${stderr}
${board2.console()}`);
        if (Date.now() > deadline) throw new Error(`board: the guest did not come up in 180 s:
${board2.console()}`);
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      board2.#qmp = await Qmp.open(join(dir, "qmp.sock"));
    } catch (error) {
      await board2.close();
      throw error;
    }
    return board2;
  }
  /** What the guest's kernel printed. */
  console() {
    try {
      return readFileSync(join(this.dir, "console.log"), "utf8");
    } catch {
      return "";
    }
  }
  /** Runs `script` (sh) in the guest; resolves with its exit status and output. */
  async run(script, timeoutMs = 12e4) {
    const n = this.#next++;
    writeFileSync(join(this.dir, `cmd-${n}.sh.tmp`), script);
    execFileSync("mv", [join(this.dir, `cmd-${n}.sh.tmp`), join(this.dir, `cmd-${n}.sh`)]);
    const done = join(this.dir, `cmd-${n}.done`);
    const deadline = Date.now() + timeoutMs;
    while (!existsSync(done)) {
      if (this.#qemu.exitCode !== null) throw new Error(`board: the guest is gone (QEMU exit ${this.#qemu.exitCode}):
${this.console().slice(-4e3)}`);
      if (Date.now() > deadline) throw new Error(`board: command ${n} did not end in ${timeoutMs} ms:
${script}
${this.#output(n)}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    return { code: Number(readFileSync(done, "utf8")), out: this.#output(n) };
  }
  /** Like run(), but fails unless the script exits 0. */
  async sh(script, timeoutMs) {
    const { code, out } = await this.run(script, timeoutMs);
    if (code !== 0) throw new Error(`board: exit ${code}:
${script}
${out}`);
    return out;
  }
  /** Plugs a QEMU USB device into the xhci controller (`port` 1..16). */
  async plug(id, driver, port, properties = {}) {
    await this.#qmp.execute("device_add", { driver, id, bus: "xhci.0", port: String(port), ...properties });
  }
  /** Adds a character backend for usb-serial: a ring buffer, which counts as open (a null backend never does, and QEMU attaches the adapter only once its backend is open). */
  async chardev(id) {
    await this.#qmp.execute("chardev-add", { id, backend: { type: "ringbuf", data: { size: 4096 } } });
  }
  /** Adds a user-mode network backend (for usb-net). */
  async netdev(id) {
    await this.#qmp.execute("netdev_add", { type: "user", id });
  }
  /** Unplugs a device; resolves once QEMU says it is gone. */
  async unplug(id) {
    const seen = this.#qmp.events.length;
    await this.#qmp.execute("device_del", { id });
    const deadline = Date.now() + 3e4;
    while (!this.#qmp.events.slice(seen).some((e) => e.event === "DEVICE_DELETED" && e.data?.device === id)) {
      if (Date.now() > deadline) throw new Error(`board: ${id} was not deleted`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  async close() {
    this.#qmp?.close();
    if (this.#qemu.exitCode === null) this.#qemu.kill("SIGKILL");
    await this.#exited;
    rmSync(this.dir, { recursive: true, force: true });
  }
  #output(n) {
    try {
      return readFileSync(join(this.dir, `cmd-${n}.out`), "utf8");
    } catch {
      return "";
    }
  }
};

// test/helpers/board-usb.ts
import { join as join2 } from "node:path";
var CLI = join2(import.meta.dirname, "..", "..", "dist", "cli", "main.js");
async function startDaemon(board2, daemon) {
  const started = Date.now();
  const start = daemon === "udevd" ? "/lib/systemd/systemd-udevd --daemon\nudevadm trigger --type=subsystems --action=add\nudevadm trigger --type=devices --action=add" : (
    // As the README has it, with the history beside the run's files.
    `node ${CLI} daemon --udev --db /tmp/history.db --log-format json > /board/hotplugd.log 2>&1 &
for i in $(seq 1 600); do [ -S /run/udev/control ] && break; sleep 0.1; done`
  );
  await board2.sh(`${start}
udevadm settle -t 300
(udevadm monitor --udev --property > /board/monitor.log 2>&1 &)
sleep 1`, 4e5);
  return Date.now() - started;
}

// ../../tmp/probe/probe.ts
var board = await Board.boot();
try {
  const ms = await startDaemon(board, "hotplugd");
  console.log("settled ms", ms);
  const extra = process.env.PROBE_SH ?? "";
  console.log(await board.sh(`cp /tmp/history.db /board/h.db; ${extra}`, 12e4));
  const { copyFileSync: copyFileSync2 } = await import("node:fs");
  copyFileSync2(`${board.dir}/h.db`, "/tmp/probe/h.db");
  copyFileSync2(`${board.dir}/hotplugd.log`, "/tmp/probe/hotplugd.log");
} finally {
  await board.close();
}
