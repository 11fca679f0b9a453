import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { LinkStates, type LinkChange } from './link-state.js';
import { parseRouteDatagram, type AddressMessage, type LinkMessage } from './rtnetlink.js';

interface Capture { step: string; datagram_b64: string }
const captures = readFileSync(new URL('../../test/fixtures/rtnetlink/netns-veth-carrier-addresses.jsonl', import.meta.url), 'utf8')
  .trim().split('\n').map((line) => JSON.parse(line) as Capture);
const messages = (step?: string) => captures.filter((c) => step === undefined || c.step === step)
  .flatMap((c) => parseRouteDatagram(Buffer.from(c.datagram_b64, 'base64')).messages)
  .filter((m): m is LinkMessage | AddressMessage => m.kind === 'link' || m.kind === 'address');
const brief = (changes: LinkChange[]) => changes.map((c) => `${c.action} ${c.name}${c.properties.IP_ADDRESS ? ` ${c.properties.IP_ADDRESS}` : ''}`);

describe('link states from the captured kernel messages', () => {
  it('turn only transitions into changes', () => {
    const states = new LinkStates();
    const steps: Record<string, string[]> = {};
    for (const step of [...new Set(captures.map((c) => c.step))]) {
      steps[step] = brief(messages(step).flatMap((m) => states.apply(m, 'carrier')));
    }
    expect(steps).toEqual({
      'veth pair added': [], // new interfaces without carrier: their add uevent tells
      'cap0 up (peer down: no carrier)': [], // admin up, still no carrier
      'cap1 up (carrier on cap0)': ['link-up cap1', 'link-up cap0'],
      'cap1 down (carrier lost on cap0)': ['link-down cap1', 'link-down cap0'],
      'cap1 up again': ['link-up cap1', 'link-up cap0'],
      'IPv4 address added': ['address-add cap0 198.51.100.7'],
      'IPv6 address added': ['address-add cap0 2001:db8::7'],
      'IPv4 address removed': ['address-remove cap0 198.51.100.7'],
      'veth pair deleted': ['link-down cap0', 'address-remove cap0 2001:db8::7', 'link-down cap1'],
      'dump setup': [],
      'RTM_GETLINK dump (seq 42)': [],
      'RTM_GETADDR dump (seq 43)': [],
    });
    expect(states.size).toBe(3); // lo, dmp0, dmp1
  });
  it('carry the properties rules match on', () => {
    const states = new LinkStates();
    const changes = messages().flatMap((m) => states.apply(m, 'carrier'));
    expect(changes.find((c) => c.action === 'link-up')!.properties).toEqual({ INTERFACE: 'cap1', IFINDEX: '2', OPERSTATE: 'up', CARRIER: '1', ADMIN: 'up' });
    expect(changes.find((c) => c.action === 'link-down')!.properties).toEqual({ INTERFACE: 'cap1', IFINDEX: '2', OPERSTATE: 'down', CARRIER: '0', ADMIN: 'down' });
    expect(changes.find((c) => c.action === 'address-add')!.properties).toEqual({
      INTERFACE: 'cap0', IFINDEX: '3', IP_ADDRESS: '198.51.100.7', PREFIX_LENGTH: '24', ADDRESS_FAMILY: 'inet', SCOPE: 'global',
    });
  });
  it('report every interface\'s state once for the start-up snapshot', () => {
    const states = new LinkStates();
    expect(brief(messages('RTM_GETLINK dump (seq 42)').flatMap((m) => states.apply(m, 'state')))).toEqual(['link-down lo', 'link-down dmp1', 'link-down dmp0']);
  });
  it('after a resync dump, remove addresses and forget interfaces it no longer lists', () => {
    const states = new LinkStates();
    for (const m of messages('veth pair added')) states.apply(m, 'carrier');
    for (const m of messages('cap1 up (carrier on cap0)')) states.apply(m, 'carrier');
    for (const m of messages('IPv6 address added')) states.apply(m, 'carrier');
    // Blind meanwhile: the pair went; the dump lists lo and dmp0/dmp1 only.
    states.beginSweep();
    const seen = messages('RTM_GETLINK dump (seq 42)').flatMap((m) => states.apply(m, 'carrier'));
    expect(brief(seen)).toEqual([]);
    expect(brief(states.endSweep())).toEqual([]);
    expect(states.nameOf(3)).toBeUndefined();
    expect(states.nameOf(5)).toBe('dmp0');
  });
  it('removes, after a resync, addresses that went while blind', () => {
    const states = new LinkStates();
    for (const m of messages('veth pair added')) states.apply(m, 'carrier');
    for (const m of messages('IPv6 address added')) states.apply(m, 'carrier');
    states.beginSweep();
    for (const m of messages('veth pair added')) states.apply(m, 'carrier');
    expect(brief(states.endSweep())).toEqual(['address-remove cap0 2001:db8::7']);
    expect(states.nameOf(3)).toBe('cap0');
  });
  it('ignores repeated messages and addresses of unknown interfaces', () => {
    const states = new LinkStates();
    const up = messages('cap1 up (carrier on cap0)').filter((m) => m.kind === 'link' && m.operstate === 6);
    expect(up.flatMap((m) => states.apply(m, 'carrier'))).toHaveLength(2);
    expect(up.flatMap((m) => states.apply(m, 'carrier'))).toHaveLength(0); // the same state again: no change
    expect(new LinkStates().apply(messages('IPv4 address added')[0]!, 'carrier')).toEqual([]);
  });
});
