import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { dumpRequest, formatIpv6, hasCarrier, IFF_LOWER_UP, IFF_RUNNING, IFF_UP, parseRouteDatagram, RTM_GETLINK, type RouteMessage } from './rtnetlink.js';

interface Capture { step: string; sender_port: number; datagram_b64: string }
const captures = readFileSync(new URL('../../test/fixtures/rtnetlink/netns-veth-carrier-addresses.jsonl', import.meta.url), 'utf8')
  .trim().split('\n').map((line) => JSON.parse(line) as Capture);
const messagesOf = (step: string): RouteMessage[] =>
  captures.filter((c) => c.step === step).flatMap((c) => parseRouteDatagram(Buffer.from(c.datagram_b64, 'base64')).messages);

describe('NETLINK_ROUTE datagrams captured from the kernel', () => {
  it('parse whole, every one', () => {
    for (const c of captures) expect(parseRouteDatagram(Buffer.from(c.datagram_b64, 'base64')).rejection).toBeUndefined();
    expect(captures.every((c) => c.sender_port === 0)).toBe(true);
  });
  it('tell carrier as systemd-networkd does', () => {
    const [noCarrier] = messagesOf('cap0 up (peer down: no carrier)');
    expect(noCarrier).toMatchObject({ kind: 'link', name: 'cap0', ifindex: 3, operstate: 3 });
    expect(hasCarrier((noCarrier as { operstate: number }).operstate, (noCarrier as { flags: number }).flags)).toBe(false);
    const cap0Up = messagesOf('cap1 up (carrier on cap0)').find((m) => m.kind === 'link' && m.name === 'cap0')!;
    expect(cap0Up).toMatchObject({ operstate: 6 });
    expect(hasCarrier(6, (cap0Up as { flags: number }).flags)).toBe(true);
    // operstate unknown (lo, tun): lower up and running is a carrier, dormant is not.
    expect(hasCarrier(0, IFF_UP | IFF_LOWER_UP | IFF_RUNNING)).toBe(true);
    expect(hasCarrier(0, IFF_UP | IFF_LOWER_UP | IFF_RUNNING | 0x20000)).toBe(false);
    expect(hasCarrier(undefined, IFF_UP | IFF_LOWER_UP)).toBe(false);
    expect(hasCarrier(5, IFF_UP | IFF_LOWER_UP | IFF_RUNNING)).toBe(false);
  });
  it('give addresses with family, prefix and scope', () => {
    expect(messagesOf('IPv4 address added')).toEqual([expect.objectContaining({ kind: 'address', deleted: false, ifindex: 3, family: 'inet', address: '198.51.100.7', prefixLength: 24, scope: 'global', label: 'cap0' })]);
    expect(messagesOf('IPv6 address added')).toEqual([expect.objectContaining({ family: 'inet6', address: '2001:db8::7', prefixLength: 64 })]);
    expect(messagesOf('IPv4 address removed')).toEqual([expect.objectContaining({ deleted: true, address: '198.51.100.7' })]);
    const linkLocal = messagesOf('cap1 down (carrier lost on cap0)').find((m) => m.kind === 'address')!;
    expect(linkLocal).toMatchObject({ deleted: true, family: 'inet6', scope: 'link' });
    expect((linkLocal as { address: string }).address).toMatch(/^fe80::/);
  });
  it('tell a deleted interface after its down and its addresses', () => {
    const kinds = messagesOf('veth pair deleted').map((m) => (m.kind === 'link' ? `${m.deleted ? 'del' : 'new'}link ${m.name}` : m.kind));
    expect(kinds).toEqual(['newlink cap0', 'address', 'address', 'newlink cap1', 'address', 'dellink cap0', 'dellink cap1']);
  });
  it('pack a dump\'s answers several to a datagram, ending with DONE', () => {
    const dump = messagesOf('RTM_GETLINK dump (seq 42)');
    expect(dump.map((m) => m.kind)).toEqual(['link', 'link', 'link', 'done']);
    expect(dump.every((m) => m.seq === 42)).toBe(true);
    expect(dump[0]).toMatchObject({ name: 'lo', ifindex: 1 });
  });
});

describe('malformed datagrams', () => {
  const good = Buffer.from(captures.find((c) => c.step === 'IPv4 address added')!.datagram_b64, 'base64');
  it('are refused with a reason, keeping the messages before the fault', () => {
    expect(parseRouteDatagram(good.subarray(0, 10)).rejection?.reason).toBe('short-header');
    const longer = Buffer.from(good);
    longer.writeUInt32LE(good.length + 100, 0);
    expect(parseRouteDatagram(longer).rejection?.reason).toBe('bad-length');
    const tiny = Buffer.from(good);
    tiny.writeUInt32LE(3, 0);
    expect(parseRouteDatagram(tiny).rejection?.reason).toBe('bad-length');
    const badAttr = Buffer.from(good);
    badAttr.writeUInt16LE(2000, 16 + 8); // the first rtattr's length runs past the message
    expect(parseRouteDatagram(badAttr).rejection?.reason).toBe('bad-attribute');
    const twice = Buffer.concat([good, good.subarray(0, 20)]);
    const parsed = parseRouteDatagram(twice);
    expect(parsed.messages).toHaveLength(1);
    expect(parsed.rejection?.reason).toBe('bad-length');
  });
  it('with unknown types and attributes are read past', () => {
    const unknown = Buffer.from(good);
    unknown.writeUInt16LE(99, 4);
    expect(parseRouteDatagram(unknown)).toEqual({ messages: [], rejection: undefined });
  });
  it('with a short address or an impossible prefix are refused', () => {
    const prefix = Buffer.from(good);
    prefix[17] = 33;
    expect(parseRouteDatagram(prefix).rejection?.reason).toBe('bad-address');
  });
});

describe('helpers', () => {
  it('write IPv6 addresses as RFC 5952 does', () => {
    const v6 = (hex: string) => Uint8Array.from(Buffer.from(hex, 'hex'));
    expect(formatIpv6(v6('20010db8000000000000000000000001'))).toBe('2001:db8::1');
    expect(formatIpv6(v6('20010db8000000010000000000000001'))).toBe('2001:db8:0:1::1');
    expect(formatIpv6(v6('00000000000000000000000000000000'))).toBe('::');
    expect(formatIpv6(v6('20010db8000100010001000100010001'))).toBe('2001:db8:1:1:1:1:1:1');
    expect(formatIpv6(v6('20010000000000010000000000000000'))).toBe('2001:0:0:1::'); // the longest run wins
  });
  it('build dump requests', () => {
    const request = dumpRequest(RTM_GETLINK, 7);
    expect(request.length).toBe(32);
    expect([request.readUInt32LE(0), request.readUInt16LE(4), request.readUInt16LE(6), request.readUInt32LE(8)]).toEqual([32, 18, 0x301, 7]);
  });
});
