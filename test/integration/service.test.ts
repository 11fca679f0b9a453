// The daemon as a service other programs talk to: the control socket (peer credentials,
// malformed requests, reload, log-level, exit), subscribers (slow ones dropped, replay
// from a cursor in the middle of a storm), libudev and raw rebroadcast, sd_notify,
// the single-instance lock, and SIGTERM during a storm.
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, statSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { DaemonProcess, canUseNamespaces, countEvents, makeTempDir, startRuleDaemon, waitFor } from '../helpers/netns.js';
import type { ProcessedRecord } from '../../src/history/records.js';

const LO = '/devices/virtual/net/lo';
const NOBODY = 65534;
const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0).reverse()) cleanup();
});

function setup(prefix: string, args: string[] = [], rules?: string, env?: NodeJS.ProcessEnv) {
  return startRuleDaemon(prefix, cleanups, rules, args, env);
}

/** Sends raw bytes to the control socket as uid/gid (via setpriv) and returns the reply. */
function rawRequest(path: string, payload: string, as?: { uid: number; gid: number }): string {
  const script = `const s=require('net').createConnection(process.argv[1]);let d='';s.setEncoding('utf8');` +
    `s.on('connect',()=>s.write(process.argv[2]));s.on('data',c=>d+=c);s.on('end',()=>process.stdout.write(d));s.on('error',e=>process.stdout.write('ERROR '+e.code))`;
  const node = [process.execPath, '-e', script, path, payload];
  const argv = as ? ['setpriv', `--reuid=${as.uid}`, `--regid=${as.gid}`, '--clear-groups', ...node] : node;
  return execFileSync(argv[0]!, argv.slice(1), { encoding: 'utf8' });
}

describe.skipIf(!canUseNamespaces())('the daemon as a service', () => {
  it('checks peer credentials: the control group may read, only root may reload or exit', async () => {
    const { daemon, dir } = await setup('creds', ['--control-group', String(NOBODY)]);
    chmodSync(dir, 0o755); // let the other user reach the socket file
    const nobody = { uid: NOBODY, gid: NOBODY };
    expect(JSON.parse(rawRequest(daemon.controlPath, '{"command":"status"}\n', nobody))).toMatchObject({ ok: true, pid: expect.any(Number) });
    const reload = JSON.parse(rawRequest(daemon.controlPath, '{"command":"reload"}\n', nobody)) as { ok: boolean; error: string };
    expect(reload).toMatchObject({ ok: false, error: expect.stringMatching(/^reload: permission denied \(needs root; uid 65534/) });
    expect(JSON.parse(rawRequest(daemon.controlPath, '{"command":"exit"}\n', nobody))).toMatchObject({ ok: false });
    // Another user outside the group cannot even connect (the socket is 0660 root:group).
    expect(rawRequest(daemon.controlPath, '{"command":"status"}\n', { uid: 12345, gid: 12345 })).toBe('ERROR EACCES');
    // Malformed and oversized requests are refused and counted.
    expect(JSON.parse(rawRequest(daemon.controlPath, 'not json\n'))).toEqual({ ok: false, error: 'request is not JSON' });
    expect(JSON.parse(rawRequest(daemon.controlPath, '["command"]\n'))).toMatchObject({ ok: false, error: expect.stringContaining('expected {"command"') });
    expect(JSON.parse(rawRequest(daemon.controlPath, 'x'.repeat(70_000)))).toMatchObject({ ok: false, error: expect.stringContaining('longer than') });
    const status = await daemon.cli(undefined, 'status', '--json');
    expect(JSON.parse(status.stdout).counters).toMatchObject({ controlRefused: 2, controlMalformed: 3 });
    expect(daemon.logs.some((l) => String(l.msg).startsWith('Refused a control request: reload: permission denied'))).toBe(true);
    // Root changes the log level and stops the daemon over the socket.
    const level = await daemon.cli(undefined, 'log-level', 'warn');
    expect(level.stdout.trim()).toBe('Log level: debug -> warn');
    expect(JSON.parse((await daemon.cli(undefined, 'status', '--json')).stdout).logLevel).toBe('warn');
    await daemon.cli(undefined, 'log-level', 'info');
    expect((await daemon.cli(undefined, 'exit')).code).toBe(0);
    await waitFor(() => daemon.child.exitCode !== null, 20_000, 'the daemon to exit by itself');
    expect(daemon.child.exitCode).toBe(0);
    expect(daemon.log('Stopping')).toMatchObject({ reason: 'control' });
  });

  it('drops a subscriber that stops reading while events keep flowing', async () => {
    const { netns, daemon } = await setup('slow');
    const socket = createConnection(daemon.controlPath);
    cleanups.push(() => socket.destroy());
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    socket.write('{"command":"subscribe"}\n');
    socket.pause(); // never reads again
    netns.writeUevents('/sys/class/net/lo/uevent', 'change', 20_000);
    await waitFor(() => countEvents(daemon.dbPath, `devpath = '${LO}' AND action = 'change'`) === 20_000, 60_000, '20,000 recorded events');
    await waitFor(() => daemon.logs.some((l) => String(l.msg).startsWith('Dropped a subscriber: it did not read')), 10_000, 'the subscriber to be dropped');
    const status = JSON.parse((await daemon.cli(undefined, 'status', '--json')).stdout) as { counters: Record<string, number> };
    expect(status.counters).toMatchObject({ subscribers: 0, subscribersDropped: 1, processed: 20_000 });
    expect(await daemon.stop()).toBe(0);
  }, 90_000);

  it('replays from a cursor in the middle of a storm, then goes live: every event exactly once', async () => {
    const { netns, daemon } = await setup('replay');
    const storm = netns.startUevents('/sys/class/net/lo/uevent', 'change');
    cleanups.push(() => storm.child.kill('SIGKILL'));
    await waitFor(() => countEvents(daemon.dbPath, `devpath = '${LO}'`) >= 2000, 30_000, '2,000 events before subscribing');
    const received: ProcessedRecord[] = [];
    const monitor = spawn(process.execPath, [join(import.meta.dirname, '../../dist/cli/main.js'), 'monitor', '--processed', '--json', '--cursor', '0', '--control', daemon.controlPath]);
    cleanups.push(() => monitor.kill('SIGKILL'));
    let partial = '';
    monitor.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      const lines = (partial + chunk).split('\n');
      partial = lines.pop()!;
      for (const line of lines) received.push(JSON.parse(line) as ProcessedRecord);
    });
    await waitFor(() => received.length >= 4000, 30_000, 'replayed and live events');
    const written = await storm.stop();
    expect((await daemon.cli(netns, 'settle')).code).toBe(0);
    await waitFor(() => received.length === written, 30_000, `all ${written} events at the subscriber`);
    monitor.kill('SIGTERM');
    expect(await daemon.stop()).toBe(0);
    const ids = received.map((r) => r.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids).toEqual(Array.from({ length: ids.length }, (_, i) => i + 1));
    expect(received.every((r) => r.devpath === LO && r.action === 'change')).toBe(true);
  }, 90_000);

  it('passes processed events to libudev listeners (udevadm monitor) on group 2 and in kernel format on group 4', async () => {
    const udevadm = ['/usr/bin/udevadm', '/bin/udevadm'].find((p) => { try { execFileSync(p, ['--version']); return true; } catch { return false; } });
    if (!udevadm && process.env.CI === 'true') throw new Error('CI=true: udevadm (Debian package udev) must be installed');
    if (!udevadm) return;
    const { netns, daemon } = await setup('libudev', [], `rules:
  - name: mark
    match: { action: add, subsystem: net, kernel: "lu*" }
    set: { env: { HOTPLUGD_SEEN: "yes" }, tags: [hotplugd-test] }
`);
    // The subsystem and tag matches run as a BPF filter on our header's MurmurHash2 values
    // and tag bloom filter: the event shows only if we computed them as libudev does.
    // libudev only listens on group 2 where udevd would run: /dev is devtmpfs or
    // /run/udev/control exists. Give the monitor a private /run with that file.
    const script = `mount --make-rprivate / && mount -t tmpfs tmpfs /run && mkdir -p /run/udev && : > /run/udev/control && exec ${udevadm} monitor --udev --property --subsystem-match=net --tag-match=hotplugd-test`;
    const monitor = spawn('ip', ['netns', 'exec', netns.name, 'unshare', '--mount', 'sh', '-c', script]);
    cleanups.push(() => monitor.kill('SIGKILL'));
    let udevOut = '';
    monitor.stdout.setEncoding('utf8').on('data', (chunk: string) => (udevOut += chunk));
    const raw = spawn('ip', ['netns', 'exec', netns.name, process.execPath, '-e', RAW_LISTENER, join(import.meta.dirname, '../../node_modules/node-gyp-build'), join(import.meta.dirname, '../..')]);
    cleanups.push(() => raw.kill('SIGKILL'));
    let rawOut = '';
    raw.stdout.setEncoding('utf8').on('data', (chunk: string) => (rawOut += chunk));
    await waitFor(() => udevOut.includes('UDEV - the event which udev sends out'), 10_000, 'udevadm monitor to listen');
    await new Promise((resolve) => setTimeout(resolve, 200)); // and the raw listener
    netns.writeUevents('/sys/class/net/lo/uevent', 'change', 1); // net, but untagged: filtered out
    netns.ip('link', 'add', 'lu0', 'type', 'veth', 'peer', 'name', 'lu1');
    await waitFor(() => /UDEV  \[[\d.]+\] add +\/devices\/virtual\/net\/lu0 \(net\)/.test(udevOut) && udevOut.includes('HOTPLUGD_SEEN=yes'), 10_000, 'udevadm monitor to print our event');
    expect(udevOut).toMatch(/INTERFACE=lu0/);
    expect(udevOut).toMatch(/TAGS=:hotplugd-test:/);
    expect(udevOut).not.toMatch(/change +\/devices\/virtual\/net\/lo/);
    expect(rawOut).toContain('change@/devices/virtual/net/lo'); // group 4 has no filter
    await waitFor(() => rawOut.includes('add@/devices/virtual/net/lu0'), 10_000, 'the group 4 listener to receive our event');
    const line = rawOut.split('\n').find((l) => l.includes('add@/devices/virtual/net/lu0'))!;
    expect(JSON.parse(line)).toMatchObject({ properties: expect.arrayContaining(['ACTION=add', 'INTERFACE=lu0', 'HOTPLUGD_SEEN=yes']) });
    expect(await daemon.stop()).toBe(0);
  }, 60_000);

  it('tells systemd READY, STATUS, WATCHDOG and STOPPING on $NOTIFY_SOCKET', async () => {
    const dir = makeTempDir('notify');
    cleanups.push(() => dir.remove());
    const socketPath = join(dir.path, 'notify.sock');
    const receiver = spawn('python3', ['-u', '-c', NOTIFY_RECEIVER, socketPath]);
    cleanups.push(() => receiver.kill('SIGKILL'));
    let messages = '';
    receiver.stdout.setEncoding('utf8').on('data', (chunk: string) => (messages += chunk));
    await waitFor(() => messages.includes('LISTENING'), 10_000, 'the notify receiver');
    const { daemon } = await setup('sdn', [], undefined, { ...process.env, NOTIFY_SOCKET: socketPath, WATCHDOG_USEC: '200000' });
    await waitFor(() => messages.includes('READY=1') && messages.includes('WATCHDOG=1'), 10_000, 'READY=1 and a watchdog ping');
    expect(messages).toMatch(/STATUS=\d+ events processed, \d+ queued/);
    expect(messages).toMatch(/MAINPID=\d+/);
    expect(await daemon.stop()).toBe(0);
    await waitFor(() => messages.includes('STOPPING=1'), 5000, 'STOPPING=1');
  });

  it('refuses to start a second daemon on the same database, with a clear message and exit code 4', async () => {
    const { netns, daemon, dir } = await setup('lock');
    const second = new DaemonProcess(netns, daemon.dbPath, ['--no-coldplug', '--control', join(dir, 'other.sock')]);
    cleanups.push(() => second.kill());
    await waitFor(() => second.child.exitCode !== null, 10_000, 'the second daemon to exit');
    expect(second.child.exitCode).toBe(4);
    expect(second.logs.map((l) => l.msg).join('\n')).toMatch(/Another hotplugd \(pid \d+\) is already using .*history\.db; stop it first/);
    expect(await daemon.stop()).toBe(0);
  });

  it('starts with its database in a directory that does not exist yet (the lock file goes there first)', async () => {
    const { netns, daemon, dir } = await setup('statedir');
    expect(await daemon.stop()).toBe(0);
    const fresh = new DaemonProcess(netns, join(dir, 'var', 'lib', 'hotplugd', 'history.db'), ['--no-coldplug']);
    cleanups.push(() => fresh.kill());
    await waitFor(() => fresh.log('hotplugd started') !== undefined || fresh.child.exitCode !== null, 10_000, 'the daemon to start');
    expect(fresh.child.exitCode).toBeNull();
    expect(statSync(join(dir, 'var', 'lib', 'hotplugd')).mode & 0o777).toBe(0o755);
    expect(await fresh.stop()).toBe(0);
  });

  it('on SIGTERM during a storm loses no accepted event', async () => {
    // A program per event makes the events of lo queue up behind each other.
    const { netns, daemon } = await setup('term', ['--stop-timeout', '1s'], `rules:
  - name: per-event
    match: { action: change, subsystem: net, kernel: lo }
    run: [["/bin/true"]]
`);
    const storm = netns.startUevents('/sys/class/net/lo/uevent', 'change');
    cleanups.push(() => storm.child.kill('SIGKILL'));
    await waitFor(() => countEvents(daemon.dbPath, `devpath = '${LO}'`) >= 200, 30_000, 'a storm under way');
    expect(await daemon.stop()).toBe(0);
    await storm.stop();
    const final = daemon.log('hotplugd stopped')!.counters as Record<string, number>;
    expect(final.accepted).toBeGreaterThan(200);
    expect(countEvents(daemon.dbPath, `devpath = '${LO}' AND action = 'change'`)).toBe(final.accepted);
    // Those not started by the stop timeout are recorded, marked as not processed.
    const unprocessed = countEvents(daemon.dbPath, `devpath = '${LO}' AND result LIKE '%not processed: the daemon stopped first%'`);
    expect(unprocessed).toBe(final.unprocessedAtStop);
    expect(final.processed! + final.unprocessedAtStop!).toBe(final.accepted);
  }, 60_000);

  it('a second SIGINT during a stop (Ctrl-C reaching the daemon and a wrapper passing it on) does not cut the stop short', async () => {
    const { netns, daemon } = await setup('twice', [], `rules:
  - name: slow
    match: { action: add, subsystem: net, kernel: "twice0" }
    run: [["/bin/sleep", "1"]]
`);
    netns.ip('link', 'add', 'twice0', 'type', 'veth', 'peer', 'name', 'twice1');
    await new Promise((resolve) => setTimeout(resolve, 300)); // the program is running
    daemon.signal('SIGINT');
    await new Promise((resolve) => setTimeout(resolve, 100));
    daemon.signal('SIGINT');
    expect(await daemon.stop()).toBe(0);
    expect(daemon.log('hotplugd stopped')).toBeDefined();
    // The program ran to its end and was recorded with its event.
    const db = new Database(daemon.dbPath, { readonly: true });
    try {
      const row = db.prepare("SELECT a.ok FROM actions a JOIN events e ON e.id = a.event_id WHERE e.devpath LIKE '%/twice0' AND a.kind = 'program'").get() as { ok: number } | undefined;
      expect(row?.ok).toBe(1);
    } finally {
      db.close();
    }
  });
});

// Binds netlink group 4 (mask 4) with our addon and prints each datagram's header and properties.
// The addon as the daemon finds it (node-gyp-build: a build from source, or the prebuilt one).
const RAW_LISTENER = `const n=require(process.argv[1])(process.argv[2]);const {fd}=n.open(15,4,1<<20);const buf=Buffer.alloc(1<<16);const meta=new Int32Array(4);` +
  `const h=n.watch(fd,()=>{for(;;){const c=n.recv(fd,buf,meta);if(!c)break;const d=buf.subarray(meta[1],meta[1]+Math.abs(meta[2])).toString('utf8').split('\\0').filter(Boolean);` +
  `process.stdout.write(JSON.stringify({header:d[0],sender:meta[3],properties:d.slice(1)})+'\\n')}});n.start(h);`;

const NOTIFY_RECEIVER = `import socket,sys
s=socket.socket(socket.AF_UNIX,socket.SOCK_DGRAM);s.bind(sys.argv[1]);print('LISTENING',flush=True)
while True:
  print(s.recv(4096).decode().replace('\\n',' '),flush=True)`;
