import { describe, expect, it } from 'vitest';
import { interfaceLinks, pairCarrier, type CarrierEvent } from './link-sessions.js';

let id = 0;
const ev = (action: 'link-up' | 'link-down', at: number, iface = 'eth0', source = 'rtnetlink'): CarrierEvent => ({ id: ++id, action, iface, devpath: `/devices/virtual/net/${iface}`, source, at });

describe('carrier sessions', () => {
  it('pair link-up with link-down', () => {
    expect(pairCarrier([ev('link-up', 1000), ev('link-down', 4000), ev('link-up', 5000)])).toEqual([
      { upAt: 1000, downAt: 4000, endMissed: false, presentAtStart: false },
      { upAt: 5000, downAt: null, endMissed: false, presentAtStart: false },
    ]);
  });
  it('tell unknown ends: a down with no up before it, an up after an up', () => {
    expect(pairCarrier([ev('link-down', 1000), ev('link-up', 2000), ev('link-up', 3000)])).toEqual([
      { upAt: null, downAt: 1000, endMissed: false, presentAtStart: false },
      { upAt: 2000, downAt: null, endMissed: true, presentAtStart: false },
      { upAt: 3000, downAt: null, endMissed: false, presentAtStart: false },
    ]);
  });
  it('continue across a restart whose snapshot finds the link still up', () => {
    expect(pairCarrier([ev('link-up', 1000), ev('link-up', 9000, 'eth0', 'coldplug'), ev('link-down', 12_000)])).toEqual([
      { upAt: 1000, downAt: 12_000, endMissed: false, presentAtStart: false },
    ]);
    expect(pairCarrier([ev('link-up', 1000, 'eth0', 'coldplug'), ev('link-down', 2000)])[0]).toMatchObject({ presentAtStart: true });
    // A snapshot that finds the link down says nothing of a session.
    expect(pairCarrier([ev('link-down', 1000, 'eth0', 'coldplug')])).toEqual([]);
  });
  it('give per interface the time up and the flaps per hour', () => {
    const hour = 3_600_000;
    const links = interfaceLinks([
      ev('link-up', 0), ev('link-down', hour / 2), ev('link-up', hour), ev('link-down', hour + 1000),
      ev('link-up', 0, 'wlan0'),
    ], 2 * hour);
    expect(links.map((l) => [l.iface, l.sessions.length, l.upMs, l.flapsPerHour])).toEqual([
      ['eth0', 2, hour / 2 + 1000, 1],
      ['wlan0', 1, 2 * hour, 0],
    ]);
  });
});
