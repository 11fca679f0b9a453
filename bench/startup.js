#!/usr/bin/env node
// Start-up: from exec to READY=1 on $NOTIFY_SOCKET (what systemd waits for), with the
// shipped rules, a new history database and coldplug of this machine's devices, in a
// fresh network namespace. A bare `node -e 0` is timed too: the runtime's own share.
// With --cli NAME=PATH (repeated), builds are compared, alternating run by run.
// Usage: node bench/startup.js [--runs 5] [--cli before=OLD/dist/cli/main.js --cli after=dist/cli/main.js]
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { copyOfDev } from './lib/daemons.js';
import { CLI, lines, median, monotonicNs, requireRoot, round, withScope } from './lib/system.js';
import { printAndSave } from './lib/report.js';

// Prints LISTENING, then "READY <CLOCK_MONOTONIC ns>" when READY=1 arrives.
const NOTIFY_RECEIVER = `
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print("LISTENING", flush=True)
while True:
    data = s.recv(4096).decode()
    if "READY=1" in data.split("\\n"):
        print("READY", time.monotonic_ns(), flush=True)
`;

async function startOnce(cli = CLI) {
  return withScope('startup', async (scope) => {
    const socketPath = join(scope.dir, 'notify.sock');
    const receiver = scope.spawn('python3', ['-u', '-c', NOTIFY_RECEIVER, socketPath]);
    const heard = lines(receiver);
    await heard.waitFor((l) => l === 'LISTENING', 10_000, 'the notify receiver');
    const dev = copyOfDev(scope);
    const started = monotonicNs();
    const daemon = scope.spawn(process.execPath, [cli, 'daemon', '--db', join(scope.dir, 'history.db'), '--control', join(scope.dir, 'control.sock'), '--dev', dev, '--log-format', 'json'], {
      env: { ...process.env, NOTIFY_SOCKET: socketPath },
    });
    daemon.stdout.resume();
    daemon.stderr.resume();
    const ready = await heard.waitFor((l) => l.startsWith('READY '), 30_000, 'READY=1');
    // A clean stop: the daemon keeps its compiled code (the code cache) as it exits.
    const exited = new Promise((resolve) => daemon.once('exit', resolve));
    daemon.kill('SIGTERM');
    await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 10_000))]);
    return Number(BigInt(ready.split(' ')[1]) - started) / 1e6;
  });
}

// Devices for `hotplugd test` and `udevadm test` (udevadm renames network interfaces, so no
// network device): the first block device that is not a loop or RAM disk, else loop0; and
// the first PCI device, whose rules look it up in the hardware database.
function testDevices() {
  const names = readdirSync('/sys/class/block');
  const disk = names.find((n) => !/^(loop|ram|zram)\d/.test(n)) ?? 'loop0';
  const pci = existsSync('/sys/bus/pci/devices') ? readdirSync('/sys/bus/pci/devices').sort()[0] : undefined;
  return [realpathSync(join('/sys/class/block', disk)), ...(pci ? [realpathSync(join('/sys/bus/pci/devices', pci))] : [])];
}

const UDEV_RULES = ['/usr/lib/udev/rules.d', '/lib/udev/rules.d'].find((d) => existsSync(d));

function commandMs(command, args) {
  const started = monotonicNs();
  execFileSync(command, args, { stdio: 'ignore' });
  return Number(monotonicNs() - started) / 1e6;
}

function bareNodeMs() {
  const started = monotonicNs();
  execFileSync(process.execPath, ['-e', '0']);
  return Number(monotonicNs() - started) / 1e6;
}

export async function runStartup(runs, log = console.error, clis = [['hotplugd', CLI]]) {
  const readyMs = Object.fromEntries(clis.map(([name]) => [name, []]));
  const nodeMs = [];
  // One start each first, not counted: it fills the page cache and leaves the code cache
  // (in /var/cache/hotplugd) that every later start of that build reads.
  for (const [, cli] of clis) await startOnce(cli);
  for (let i = 0; i < runs; i++) {
    for (const [name, cli] of i % 2 === 0 ? clis : [...clis].reverse()) {
      readyMs[name].push(round(await startOnce(cli), 1));
      log(`startup run ${i + 1}, ${name}: READY after ${readyMs[name].at(-1)} ms`);
    }
    nodeMs.push(round(bareNodeMs(), 1));
  }
  // The command line's own speed: a dry run of Debian's rules for one device, beside udevadm's.
  const tests = [];
  if (UDEV_RULES) {
    for (const device of testDevices()) {
      const hotplugdMs = [];
      const udevadmMs = [];
      for (let i = 0; i < runs; i++) {
        hotplugdMs.push(round(commandMs(process.execPath, [clis.at(-1)[1], 'test', '--rules-dir', UDEV_RULES, device]), 1));
        udevadmMs.push(round(commandMs('unshare', ['--net', '--mount', 'udevadm', 'test', device]), 1));
      }
      tests.push({ device, hotplugdMs: median(hotplugdMs), udevadmMs: median(udevadmMs) });
      log(`startup: hotplugd test ${median(hotplugdMs)} ms, udevadm test ${median(udevadmMs)} ms (${device})`);
    }
  }
  // The goal is for any one device: the slowest is reported.
  const slowest = tests.reduce((worst, test) => (worst === undefined || test.hotplugdMs > worst.hotplugdMs ? test : worst), undefined);
  const names = clis.map(([name]) => name);
  const markdown = `## Start-up: exec to READY=1, shipped rules, new database, coldplug queued

\`node bench/startup.js --runs ${runs}${clis.length > 1 ? clis.map(([n, p]) => ` --cli ${n}=${p}`).join('') : ''}\`${clis.length > 1 ? ', builds alternating' : ''}:

| run | ${names.map((n) => `${n}: exec → READY ms`).join(' | ')} | bare \`node -e 0\` ms |
|---:|${names.map(() => '---:|').join('')}---:|
${nodeMs.map((ms, i) => `| ${i + 1} | ${names.map((n) => readyMs[n][i]).join(' | ')} | ${ms} |`).join('\n')}

Median: ${names.map((n) => `${n} ${median(readyMs[n])} ms`).join(', ')} to READY; the Node.js runtime alone takes ${median(nodeMs)} ms to start and exit here.${tests.length ? `

\`hotplugd test --rules-dir ${UDEV_RULES} DEVICE\` (Debian's rules, programs run) beside \`udevadm test DEVICE\`, medians of ${runs}:

| device | hotplugd test ms | udevadm test ms |
|---|---:|---:|
${tests.map((t) => `| \`${t.device}\` | ${t.hotplugdMs} | ${t.udevadmMs} |`).join('\n')}` : ''}`;
  const first = readyMs[names[0]];
  return { markdown, json: { readyMs: clis.length > 1 ? readyMs : first, bareNodeMs: nodeMs, medianReadyMs: median(readyMs[names.at(-1)]), medianBareNodeMs: median(nodeMs), ...(slowest ? { testMs: slowest.hotplugdMs, udevadmTestMs: slowest.udevadmMs, testDevice: slowest.device, tests } : {}) } };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  requireRoot();
  const { values } = parseArgs({ options: { runs: { type: 'string', default: '5' }, cli: { type: 'string', multiple: true } } });
  const clis = values.cli?.map((c) => [c.slice(0, c.indexOf('=')), c.slice(c.indexOf('=') + 1)]);
  printAndSave('startup', await runStartup(Number(values.runs), console.error, clis?.length ? clis : undefined));
}
