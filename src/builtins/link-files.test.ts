import { describe, expect, it } from 'vitest';
import { parseLinkFile, type LinkFacts } from './link-files.js';
import { chooseName } from './net_setup_link.js';

const facts = (extra: Partial<LinkFacts> = {}): LinkFacts => ({
  originalName: 'eth0', mac: '52:54:00:12:34:56', path: 'pci-0000:00:03.0', driver: 'virtio_net', type: 'ether', kind: undefined,
  properties: { ID_NET_NAME_PATH: 'enp0s3', ID_NET_NAME_MAC: 'enx525400123456' }, virtualization: 'kvm', architecture: 'x86-64', host: 'board', kernelCommandLine: 'quiet',
  ...extra,
});

describe('systemd .link files', () => {
  it('match as systemd does: globs, lists, negation, properties; the first matching file wins', () => {
    const { config } = parseLinkFile('/x/10-uplink.link', '[Match]\nMACAddress=52:54:00:12:34:56 aa:bb:cc:dd:ee:ff\nDriver=virtio*\nPath=!usb-*\nProperty=ID_NET_NAME_PATH=enp*\n\n[Link]\nName=uplink0\n');
    expect(config!.matches.every((m) => m(facts()))).toBe(true);
    expect(config!.matches.every((m) => m(facts({ driver: 'e1000' })))).toBe(false);
    expect(config!.matches.every((m) => m(facts({ path: 'usb-0:1:1.0' })))).toBe(false);
    expect(config!.matches.every((m) => m(facts({ mac: '00:11:22:33:44:55' })))).toBe(false);
    expect(config!.name).toBe('uplink0');
  });

  it("name as NamePolicy= says, as Debian's 99-default.link is written", () => {
    const { config } = parseLinkFile('/usr/lib/systemd/network/99-default.link',
      '[Match]\nOriginalName=*\n\n[Link]\nNamePolicy=keep kernel database onboard slot path\nAlternativeNamesPolicy=database onboard slot path\nMACAddressPolicy=persistent\n');
    const props = { ID_NET_NAME_PATH: 'enp0s3' };
    expect(chooseName(config!, 'eth0', 1, props)).toBe('enp0s3'); // enumerated by the kernel: renamed
    expect(chooseName(config!, 'v0', 3, props)).toBe('v0'); // named by its user: kept
    expect(chooseName(config!, 'eth0', 2, {})).toBe('eth0'); // predictable kernel name
    expect(chooseName(config!, 'eth0', 1, {})).toBeUndefined();
  });

  it('report file:line, and skip a file that is broken or matches on keys hotplugd cannot test', () => {
    expect(parseLinkFile('/x/a.link', '[Match]\nOriginalName=eth*\nthis is not a key\n')).toEqual({ problems: ['/x/a.link:3: expected KEY=VALUE, got "this is not a key"'] });
    expect(parseLinkFile('/x/b.link', '[Match]\nPermanentMACAddress=00:11:22:33:44:55\n').problems).toEqual(['/x/b.link:2: [Match] PermanentMACAddress= is not supported by hotplugd; the file is skipped']);
    expect(parseLinkFile('/x/c.link', '[Link]\nNamePolicy=path bogus\n').problems).toEqual(['/x/c.link:2: unknown NamePolicy bogus; ignored']);
  });
});

describe('.link file problems', () => {
  it('are reported once per change of the files, not on every interface', async () => {
    const { mkdtempSync, rmSync, writeFileSync } = await import('node:fs');
    const { join } = await import('node:path');
    const { tmpdir } = await import('node:os');
    const { currentLinkFiles, reportLinkFileProblems } = await import('./link-files.js');
    const dir = mkdtempSync(join(tmpdir(), 'hotplugd-links-'));
    try {
      const reported: string[][] = [];
      reportLinkFileProblems((problems) => reported.push(problems));
      writeFileSync(join(dir, '10-bad.link'), '[Match]\nnonsense\n');
      writeFileSync(join(dir, '20-good.link'), '[Match]\nOriginalName=eth*\n[Link]\nName=lan0\n');
      expect(currentLinkFiles([dir]).configs.map((c) => c.file)).toEqual([join(dir, '20-good.link')]);
      currentLinkFiles([dir]);
      expect(reported).toEqual([[`${join(dir, '10-bad.link')}:2: expected KEY=VALUE, got "nonsense"`]]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
