// The real udevadm (Debian's udev package) against hotplugd, unchanged: hotplugd serves
// udev's control socket and queue flag with --udev-db /run/udev. Each test runs in its own
// network namespace and a private mount namespace with a tmpfs on /run/udev, so the real
// paths udevadm uses are the test's own.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CLI, Netns, canUseNamespaces, makeTempDir } from '../helpers/netns.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0).reverse()) cleanup();
});

// A raw SEQPACKET client (Node has none): sends the given message bytes (hex) as root or
// as another uid, then prints whether the daemon closed the connection.
const RAW_CLIENT = String.raw`
import socket, sys, os
if len(sys.argv) > 2:
    os.setgid(int(sys.argv[2])); os.setuid(int(sys.argv[2]))
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
try:
    s.connect('/run/udev/control')
    s.send(bytes.fromhex(sys.argv[1]))
    s.settimeout(5)
    print('closed' if s.recv(1) == b'' else 'answered')
except Exception as e:
    print('error', type(e).__name__)
`;

/** A udev control message: version, magic, type, int value (little-endian, as on x86 and arm). */
function message(type: number, magic = 0xdead1dea, size = 280): string {
  const bytes = Buffer.alloc(size);
  bytes.write('udev-252', 0, 'latin1');
  bytes.writeUInt32LE(magic, 16);
  bytes.writeInt32LE(type, 20);
  return bytes.toString('hex');
}

/** Runs `body` (sh) in a new network and mount namespace with hotplugd serving /run/udev; returns its output and the daemon's log. */
function withDaemon(name: string, body: string, rulesDir = '$d/none'): { out: string; log: string } {
  mkdirSync('/run/udev', { recursive: true }); // the mount point (udev's package does not create it)
  const dir = makeTempDir(name);
  cleanups.push(() => dir.remove());
  const netns = new Netns(name);
  cleanups.push(() => netns.delete());
  writeFileSync(join(dir.path, 'raw.py'), RAW_CLIENT);
  const script = String.raw`
set -u
d="$1"
mount -t tmpfs tmpfs /run/udev
node "${CLI}" daemon --db "$d/h.db" --control "$d/c.sock" --udev-db /run/udev --no-coldplug --rules-dir "${rulesDir}" --dev "$d/dev" --log-format json --log-level debug > "$d/daemon.log" 2>&1 &
pid=$!
for i in $(seq 1 200); do [ -S /run/udev/control ] && break; sleep 0.05; done
count() { node -e "const D=require('better-sqlite3');const db=new D(process.argv[1],{readonly:true});console.log(db.prepare(\"select count(*) n from events where action='change' and devpath='/devices/virtual/net/lo'\").get().n)" "$d/h.db"; }
raw() { python3 "$d/raw.py" "$@"; }
${body}
kill -TERM $pid 2>/dev/null; wait $pid; echo "daemon exit $?"
`;
  writeFileSync(join(dir.path, 'run.sh'), script);
  const out = execFileSync('ip', ['netns', 'exec', netns.name, 'unshare', '--mount', '--propagation', 'private', 'sh', join(dir.path, 'run.sh'), dir.path],
    { encoding: 'utf8', timeout: 180_000, cwd: join(import.meta.dirname, '..', '..') });
  return { out, log: readFileSync(join(dir.path, 'daemon.log'), 'utf8') };
}

describe.skipIf(!canUseNamespaces())('the real udevadm driving hotplugd', () => {
  it("IMPORT{db}: the dry run sees udev's database as the daemon and udevadm test do", () => {
    // The rules live in /run/udev/rules.d (the test's tmpfs), where udevadm test reads them too.
    const { out } = withDaemon('udevadm-db', String.raw`
mkdir -p /run/udev/rules.d
cat > /run/udev/rules.d/50-ho-db.rules <<'RULES'
ACTION=="add", KERNEL=="lo", ENV{HO_DB}="from-add"
ACTION=="change", KERNEL=="lo", IMPORT{db}="HO_DB"
ACTION=="change", KERNEL=="lo", ENV{HO_SEEN}="$env{HO_DB}"
RULES
kill -HUP $pid
sleep 0.5
echo add > /sys/class/net/lo/uevent
udevadm settle -t 20 && echo "add settled"
grep -h HO_DB /run/udev/data/n1
echo "--- hotplugd test"
node "${CLI}" test --action change --udev-db /run/udev --rules-dir /run/udev/rules.d --dev "$d/dev" /sys/class/net/lo | sed -n 's/^ *\(HO_[A-Z]*=\)/\1/p'
echo "--- hotplugd test --udev-db none"
node "${CLI}" test --action change --udev-db none --rules-dir /run/udev/rules.d --dev "$d/dev" /sys/class/net/lo | sed -n 's/^ *\(HO_[A-Z]*=\)/\1/p'
echo "--- udevadm test"
udevadm test --action=change /sys/class/net/lo 2>/dev/null | grep -E '^HO_(DB|SEEN)='
echo "--- daemon"
echo change > /sys/class/net/lo/uevent
udevadm settle -t 20
node -e "const D=require('better-sqlite3');const db=new D(process.argv[1],{readonly:true});for(const r of db.prepare(\"select action, result from events where devpath='/devices/virtual/net/lo' order by id\").all()) console.log(r.action, JSON.parse(r.result ?? '{}').properties?.HO_SEEN ?? '-')" "$d/h.db"
`, '/run/udev/rules.d');
    expect(out).toBe([
      'add settled', 'E:HO_DB=from-add',
      '--- hotplugd test', 'HO_DB=from-add', 'HO_SEEN=from-add',
      '--- hotplugd test --udev-db none', 'HO_SEEN=',
      '--- udevadm test', 'HO_DB=from-add', 'HO_SEEN=from-add',
      '--- daemon', 'add -', 'change from-add',
      'daemon exit 0', '',
    ].join('\n'));
  });

  it('100 silent root connections neither lock udevadm out nor make settle lie; they are closed within the idle time', () => {
    const { out } = withDaemon('udevadm-silent', String.raw`
mkdir -p "$d/rules.d"
echo 'ACTION=="change", KERNEL=="lo", RUN+="/bin/sleep 4"' > "$d/rules.d/50-slow.rules"
udevadm control --reload
version() { node "${CLI}" status --control "$d/c.sock" --json | node -e 'let t="";process.stdin.on("data",c=>t+=c).on("end",()=>console.log(JSON.parse(t).rules.version))'; }
before=$(version)
# 100 root connections that say nothing; each notes when the daemon closed it.
cat > "$d/holders.py" <<'PY'
import socket, time, select, json
socks = []
for i in range(100):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.connect('/run/udev/control')
    socks.append((s, time.monotonic()))
open('/tmp/holders-ready', 'w').close()
lifetimes, deadline = [], time.monotonic() + 15
while socks and time.monotonic() < deadline:
    ready, _, _ = select.select([s for s, _ in socks], [], [], 0.05)
    for s in ready:
        try:
            gone = s.recv(1) == b''
        except OSError:
            gone = True
        if gone:
            lifetimes.append(time.monotonic() - [t for x, t in socks if x is s][0])
            socks = [(x, t) for x, t in socks if x is not s]
print(json.dumps({'closed': len(lifetimes), 'open': len(socks), 'longest': round(max(lifetimes or [0]), 2)}))
PY
rm -f /tmp/holders-ready
python3 "$d/holders.py" > "$d/holders.json" &
holders=$!
for i in $(seq 1 100); do [ -e /tmp/holders-ready ] && break; sleep 0.05; done
echo change > /sys/class/net/lo/uevent
t0=$(date +%s%N)
udevadm settle --timeout=30; rc=$?
t1=$(date +%s%N)
echo "settle exit $rc after at least 3 s: $([ $(( (t1 - t0) / 1000000 )) -ge 3000 ] && echo yes || echo no)"
udevadm control --reload && echo "reload exit 0"
[ "$(version)" -gt "$before" ] && echo "rules version moved"
wait $holders
cat "$d/holders.json"
rm -f /tmp/holders-ready
`, '$d/rules.d');
    const lines = out.trim().split('\n');
    expect(lines.slice(0, 3)).toEqual(['settle exit 0 after at least 3 s: yes', 'reload exit 0', 'rules version moved']);
    const holders = JSON.parse(lines[3]!) as { closed: number; open: number; longest: number };
    // Every silent connection was closed within the idle time (3 s) and a second.
    expect(holders).toMatchObject({ closed: 100, open: 0 });
    expect(holders.longest).toBeLessThanOrEqual(4);
  });

  it('control --ping, --reload, --log-level and --exit', () => {
    const { out, log } = withDaemon('udevadm-ctl', String.raw`
udevadm control --ping && echo "ping ok"
udevadm control --reload && echo "reload ok"
udevadm control --log-level=info && echo "log-level ok"
udevadm control --exit && echo "exit ok"
wait $pid; echo "daemon exit $?"; exit 0
`);
    expect(out).toBe('ping ok\nreload ok\nlog-level ok\nexit ok\ndaemon exit 0\n');
    expect(log).toMatch(/"reason":"control".*"msg":"Rules reloaded"/);
    expect(log).toMatch(/"logLevel":"info","priority":6,"msg":"Log level changed \(udev control\)"/);
    expect(log).toMatch(/"msg":"hotplugd stopped"/);
  });

  it('settle returns once every event of a storm is processed and recorded (three storms, 20,000 events in all)', () => {
    // Recorded, not only processed: the history is committed before the queue flag goes.
    const { out } = withDaemon('udevadm-settle', String.raw`
for n in 10000 5000 5000; do
  node -e "const fs=require('fs');for(let i=0;i<$n;i++)fs.writeFileSync('/sys/class/net/lo/uevent','change')"
  udevadm settle --timeout=120 && echo "settled"
  echo "recorded $(count)"
done
[ -e /run/udev/queue ] && echo "queue flag left" || echo "no queue flag"
`);
    expect(out).toMatch(/^settled\nrecorded 10000\nsettled\nrecorded 15000\nsettled\nrecorded 20000\nno queue flag\n/);
  });

  it('trigger --settle waits for the events it sent, and the queue flag shows while events are held', () => {
    const { out } = withDaemon('udevadm-trigger', String.raw`
udevadm trigger --settle --subsystem-match=net --action=change && echo "trigger settled"
echo "recorded $(count)"
udevadm control --stop-exec-queue && echo "stopped"
node -e "require('fs').writeFileSync('/sys/class/net/lo/uevent','change')"
sleep 0.5
[ -e /run/udev/queue ] && echo "queue flag while held"
udevadm control --start-exec-queue && echo "started"
udevadm settle --timeout=30 && echo "settled"
[ -e /run/udev/queue ] || echo "queue flag gone"
`);
    expect(out).toMatch(/^trigger settled\nrecorded 1\nstopped\nqueue flag while held\nstarted\nsettled\nqueue flag gone\n/);
  });

  it('wait returns once an interface that appears is processed, and info shows it', () => {
    const { out } = withDaemon('udevadm-wait', String.raw`
(sleep 1; ip link add uwt0 type veth peer name uwt1) &
udevadm wait --timeout=20 /sys/class/net/uwt0 && echo "waited"
udevadm info --query=property /sys/class/net/uwt0 | grep -E '^(INTERFACE|SUBSYSTEM)='
`);
    expect(out).toMatch(/^waited\nINTERFACE=uwt0\nSUBSYSTEM=net\n/);
  });

  it('refuses messages of the wrong size or magic and senders who are not root, and keeps serving', () => {
    const { out, log } = withDaemon('udevadm-bad', String.raw`
raw ${message(7, 0xdead1dea, 100)}
raw ${message(7, 0x12345678)}
# The socket is root's alone; opened to all (a mistake), the daemon still checks the sender.
chmod 666 /run/udev/control
raw ${message(7)} 65534
udevadm control --ping && echo "still answers"
`);
    // Refused at accept: the connection is closed before (or after) the message is sent.
    expect(out).toMatch(/^closed\nclosed\n(closed|error ConnectionResetError|error BrokenPipeError)\nstill answers\n/);
    expect(log).toMatch(/Refused a udev control message: expected a 280-byte message, got 100 bytes/);
    expect(log).toMatch(/Refused a udev control message: wrong magic 0x12345678/);
    expect(log).toMatch(/Refused a udev control (connection|message) from uid 65534/);
  });
});
