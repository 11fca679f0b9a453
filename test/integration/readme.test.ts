// The README's quick start, run as written: its command lines are read from README.md and
// run by a shell, as root, in a private network namespace and a private mount namespace
// (tmpfs on /var/lib and /run, a copy of /dev), so the default database, control socket
// and device nodes are the real default paths and the machine is left untouched.
// `npm ci` and `sudo npm test` are not run again: CI has just run them to get here.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { Netns, canUseNamespaces, makeTempDir } from '../helpers/netns.js';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0).reverse()) cleanup();
});

/** The command lines of the README's `sh` blocks, comments stripped, block by block. */
function readmeBlocks(): string[][] {
  const text = readFileSync(join(REPO, 'README.md'), 'utf8');
  return [...text.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) =>
    (m[1] as string).split('\n').map((line) => line.replace(/\s+#.*$/, '').trim()).filter((line) => line !== '' && !line.startsWith('#')));
}

// Runs inside the namespaces. Each command gets 6 s; those that run until stopped
// (monitor, wait) end by that timeout (status 124), which is what a user sees too.
const SCRIPT = String.raw`
set -u
out="$1"; repo="$2"; daemon="$3"; daemon_udev="$4"; shift 4
mount -t tmpfs tmpfs /var/lib
mkdir -p "$out/dev" && cp -a --one-file-system /dev/. "$out/dev" && mount --bind "$out/dev" /dev
mount -t tmpfs tmpfs /run
cd "$repo"
# Each daemon line runs in a process group of its own and is stopped as Ctrl-C in its
# terminal would: SIGINT to the whole group (sudo, npm exec, sh and the daemon).
start() {
  setsid sh -c "exec $1" > "$out/$2.out" 2>&1 &
  pid=$!
  for i in $(seq 1 300); do [ -S /run/hotplugd/control.sock ] && break; sleep 0.1; done
}
stop() { kill -INT -$pid; wait $pid; echo $? > "$out/$1.rc"; }
start "$daemon" daemon
ls -l /var/lib/hotplugd > "$out/state.out" 2>&1
(sleep 3; ip link add rdm0 type veth peer name rdm1) &
i=0
for cmd in "$@"; do
  timeout 6 sh -c "$cmd" > "$out/cmd$i.out" 2>&1 < /dev/null
  echo $? > "$out/cmd$i.rc"
  i=$((i + 1))
done
stop daemon
start "$daemon_udev" daemon-udev
sleep 1
stop daemon-udev
`;

describe.skipIf(!canUseNamespaces())("the README's quick start", () => {
  it('works as written on a machine with nothing set up: the daemon with its default database, then every command beside it', () => {
    const [first, second] = readmeBlocks();
    const daemon = first!.find((line) => /^sudo npx hotplugd daemon$/.test(line));
    const daemonUdev = first!.find((line) => /^sudo npx hotplugd daemon --udev$/.test(line));
    expect(daemon, 'the README starts the daemon with "sudo npx hotplugd daemon"').toBeDefined();
    expect(daemonUdev).toBeDefined();
    expect(first!.filter((line) => line !== daemon && line !== daemonUdev)).toEqual(['npm ci', 'sudo npm test']);
    expect(second!.length).toBeGreaterThan(10);

    const dir = makeTempDir('readme');
    cleanups.push(() => dir.remove());
    const netns = new Netns('readme');
    cleanups.push(() => netns.delete());
    const out = join(dir.path, 'out');
    mkdirSync(out);
    writeFileSync(join(dir.path, 'run.sh'), SCRIPT);
    execFileSync('ip', ['netns', 'exec', netns.name, 'unshare', '--mount', '--propagation', 'private',
      'sh', join(dir.path, 'run.sh'), out, REPO, daemon!, daemonUdev!, ...second!], { stdio: 'ignore', timeout: 240_000 });

    const read = (name: string) => readFileSync(join(out, name), 'utf8');
    const result = (command: string) => {
      const i = second!.indexOf(command);
      expect(i, command).toBeGreaterThanOrEqual(0);
      return { rc: Number(read(`cmd${i}.rc`)), out: read(`cmd${i}.out`) };
    };
    // The daemon made its state directory and database where the README says, and stopped cleanly.
    expect(read('daemon.out')).toMatch(/"db":"\/var\/lib\/hotplugd\/history\.db".*"msg":"hotplugd started"/);
    expect(read('state.out')).toMatch(/history\.db/);
    expect(read('daemon.out')).toMatch(/"reason":"SIGINT".*"msg":"Stopping"[\s\S]*"msg":"hotplugd stopped"/);
    // The daemon exits 0; npm exec, interrupted too, reports 130 as any program does after Ctrl-C.
    expect(['0', '130']).toContain(read('daemon.rc').trim());
    expect(read('daemon-udev.out')).toMatch(/"msg":"hotplugd started"[\s\S]*"msg":"hotplugd stopped"/);
    expect(['0', '130']).toContain(read('daemon-udev.rc').trim());

    const expectations: [RegExp, number, RegExp][] = [
      [/^sudo npx hotplugd monitor$/, 124, /KERNEL\[[\d.]+\] add +\/devices\/virtual\/net\/rdm0 \(net\)/],
      [/^sudo npx hotplugd history --since 1h$/, 0, /rdm0/],
      [/^sudo npx hotplugd history --device 0781:5583 --json$/, 1, /0781:5583/],
      [/^sudo npx hotplugd sessions$/, 0, /^No USB devices in the history yet/],
      [/^sudo npx hotplugd sessions --links$/, 0, /^lo: carrier 0 times since .*, up 0 s in all, 0\.00 flaps per hour$/m],
      [/^sudo npx hotplugd info sdb$/, 1, /sdb/],
      // SEQNUM gaps show when other namespaces' events (other tests) came meanwhile.
      [/^sudo npx hotplugd history --incidents$/, 0, /^(No incidents recorded|\d{4}-\d\d-\d\dT[\d:.]+Z  seqnum-gap )/],
      [/^sudo npx hotplugd trigger --subsystem-match net --dry-run$/, 0, /\/devices\/virtual\/net\/lo\n/],
      [/^npx hotplugd test \/sys\/class\/net\/lo$/, 0, /device +\/devices\/virtual\/net\/lo/],
      [/^npx hotplugd rules check$/, 0, /./],
      [/^sudo npx hotplugd reload$/, 0, /^Rules reloaded: \d+ rules from \d+ files/],
      [/^sudo npx hotplugd status --rules$/, 0, /^pid \d+, up \d+ s[\s\S]*\nhistory: \d+ events recorded[\s\S]*\ncontrol: \d+ connections open/],
      [/^sudo npx hotplugd settle$/, 0, /^$/],
      [/^sudo npx hotplugd wait \/dev\/serial\/by-id\//, 124, /^$/],
      [/^sudo npx hotplugd monitor --processed --cursor 10m$/, 124, /UDEV +\[[\d.]+\] add +\/devices\/virtual\/net\/rdm0 \(net\)/],
      [/^sudo npx hotplugd serve$/, 124, /Serving the history on http:\/\/127\.0\.0\.1:8073\//],
    ];
    const wrong = [];
    for (const command of second!) {
      const expected = expectations.find(([pattern]) => pattern.test(command));
      if (expected === undefined) {
        wrong.push({ command, problem: 'no expectation in this test for a command the README shows' });
        continue;
      }
      const { rc, out: printed } = result(command);
      if (rc !== expected[1] || !expected[2].test(printed)) wrong.push({ command, rc, printed: printed.slice(0, 300) });
    }
    expect(wrong).toEqual([]);
  }, 300_000);
});
