import { describe, expect, it } from 'vitest';
import { createProperties, eventFromProperties } from '../../uevent/event.js';
import { staticAccounts } from '../../os/accounts.js';
import { evaluate } from '../../engine/evaluate.js';
import { formatDiagnostic } from '../../rules/model.js';
import { RuleSet } from '../../rules/ruleset.js';
import { compileMdevConf } from './compile.js';

const accounts = staticAccounts({ root: 0 }, { root: 0, dialout: 20, disk: 6, video: 44 });

function event(action: string, devpath: string, subsystem: string, extra: Record<string, string>) {
  const p = createProperties();
  Object.assign(p, { ACTION: action, DEVPATH: devpath, SUBSYSTEM: subsystem, ...extra });
  return eventFromProperties(p, Date.now(), 'kernel');
}

const CONF = `# busybox mdev.conf
-ttyUSB[0-9]+   root:dialout 0660
ttyUSB0         root:dialout 0664 >serial/gps @/bin/echo plugged $MDEV $ACTION
ttyUSB[0-9]+    root:root 0600
tty/ttyS.*      root:dialout 0640
$MODALIAS=usb:v1D6Bp.* root:root 0644
@8,0-15         root:disk 0640 =disks/
fb([0-2])       root:video 0660 >fb/%1
.*              root:root 0600 $/bin/echo gone $MDEV
`;

describe('mdev.conf front end', () => {
  const { rules, diagnostics } = compileMdevConf(CONF, '/etc/mdev.conf', accounts);
  const set = new RuleSet(rules);
  const run = (e: ReturnType<typeof event>) => evaluate(set, { event: e, device: undefined }).plan;

  it('the first matching line wins; a line starting with "-" lets later lines match too', () => {
    const gps = run(event('add', '/devices/usb1/1-1/1-1:1.0/ttyUSB0/tty/ttyUSB0', 'tty', { DEVNAME: 'ttyUSB0', MAJOR: '188', MINOR: '0' }));
    expect(gps).toMatchObject({ owner: { id: 0 }, group: { id: 20 }, mode: 0o664, symlinks: ['/dev/serial/gps'] });
    expect(gps.run.map((r) => r.argv)).toEqual([['/bin/echo', 'plugged', 'ttyUSB0', 'add']]);
    const other = run(event('add', '/devices/usb1/1-2/1-2:1.0/ttyUSB1/tty/ttyUSB1', 'tty', { DEVNAME: 'ttyUSB1', MAJOR: '188', MINOR: '1' }));
    expect(other).toMatchObject({ group: { id: 0 }, mode: 0o600, symlinks: [], run: [] });
  });

  it('selects by SUBSYSTEM/regex, $VAR=regex and @major,minor-range; =dir/ links the node by its name', () => {
    expect(run(event('add', '/devices/pnp0/00:05/tty/ttyS0', 'tty', { DEVNAME: 'ttyS0', MAJOR: '4', MINOR: '64' }))).toMatchObject({ group: { id: 20 }, mode: 0o640 });
    expect(run(event('add', '/devices/pci0/usb1/1-0:1.0', 'usb', { MODALIAS: 'usb:v1D6Bp0002d0515' }))).toMatchObject({ mode: 0o644 });
    expect(run(event('add', '/devices/pci0/block/sda', 'block', { DEVNAME: 'sda', MAJOR: '8', MINOR: '0' }))).toMatchObject({ group: { id: 6 }, symlinks: ['/dev/disks/sda'] });
    expect(run(event('add', '/devices/pci0/block/sdq', 'block', { DEVNAME: 'sdq', MAJOR: '65', MINOR: '0' }))).toMatchObject({ group: { id: 0 }, mode: 0o600 });
  });

  it('$command runs on remove only, with MDEV and ACTION', () => {
    const removed = run(event('remove', '/devices/virtual/misc/fuse', 'misc', { DEVNAME: 'fuse', MAJOR: '10', MINOR: '229' }));
    expect(removed.run.map((r) => r.argv)).toEqual([['/bin/echo', 'gone', 'fuse']]);
    expect(run(event('add', '/devices/virtual/misc/fuse', 'misc', { DEVNAME: 'fuse', MAJOR: '10', MINOR: '229' })).run).toEqual([]);
  });

  it('reports what differs from busybox', () => {
    expect(diagnostics.map(formatDiagnostic)).toEqual(['/etc/mdev.conf:8:1: warning: ">fb/%1": back-references (%1...) are not supported; no link is made']);
  });

  it('reports bad lines with file:line:column and loads the rest', () => {
    const bad = compileMdevConf('sd[a-z\troot:disk 0660\nnull root:nosuch 0666\nzero root:root 0666 @/bin/echo a | tee b\nrandom root:root 0666\n', 'm.conf', accounts);
    expect(bad.diagnostics.map(formatDiagnostic)).toEqual([
      expect.stringMatching(/^m\.conf:1:1: error: bad regular expression "sd\[a-z"/),
      'm.conf:2:1: error: unknown group "nosuch"; line ignored',
      expect.stringMatching(/^m\.conf:3:1: error: shell syntax .* not supported/),
    ]);
    expect(bad.rules.filter((r) => r.label === undefined).map((r) => r.at.line)).toEqual([4]);
  });
});
