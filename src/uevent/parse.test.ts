import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { parseUevent, MAX_DATAGRAM_BYTES, REJECT_REASONS } from './parse.js';
import { encodeKernelDatagram, loadKernelCaptures, loadUeventFixtures } from '../../test/helpers/fixtures.js';

const NOW = Date.parse('2026-11-22T10:00:00.000Z');

/** The KEY=VALUE pairs of a datagram, split by hand, for comparison. */
function pairsOf(datagram: Buffer): [string, string][] {
  return datagram
    .toString('utf8')
    .split('\0')
    .slice(1, -1)
    .map((field) => [field.slice(0, field.indexOf('=')), field.slice(field.indexOf('=') + 1)]);
}

describe('parseUevent on real kernel captures', () => {
  const captures = loadKernelCaptures();

  it('has the captured datagrams to test', () => {
    expect(captures.length).toBe(39);
  });

  it.each(captures.map((c) => [`${c.file}:${c.line}`, c] as const))('parses %s', (_name, capture) => {
    const result = parseUevent(capture.datagram, NOW);
    if (!result.ok) throw new Error(`rejected: ${result.reason}: ${result.detail}`);
    const { event } = result;
    const pairs = pairsOf(capture.datagram);
    expect(Object.entries(event.properties)).toEqual(pairs);
    const header = capture.datagram.toString('utf8', 0, capture.datagram.indexOf(0));
    expect(`${event.action}@${event.devpath}`).toBe(header);
    expect(event.subsystem).toBe(event.properties.SUBSYSTEM);
    expect(event.seqnum).toBe(Number(event.properties.SEQNUM));
    expect(event.receivedAt).toBe(NOW);
    expect(event.source).toBe('kernel');
  });

  it('reads the move event with DEVPATH_OLD', () => {
    const moves = captures.map((c) => parseUevent(c.datagram, NOW)).filter((r) => r.ok && r.event.action === 'move');
    expect(moves).toHaveLength(1);
    const move = moves[0]!;
    if (!move.ok) throw new Error('unreachable');
    expect(move.event.devpathOld).toMatch(/^\/devices\/virtual\/net\//);
    expect(move.event.devpathOld).not.toBe(move.event.devpath);
  });

  it('reads typed fields of a block device event', () => {
    const loop = captures
      .map((c) => parseUevent(c.datagram, NOW))
      .find((r) => r.ok && r.event.subsystem === 'block');
    if (!loop?.ok) throw new Error('no block event in the captures');
    expect(loop.event.major).toBe(Number(loop.event.properties.MAJOR));
    expect(loop.event.minor).toBe(Number(loop.event.properties.MINOR));
    expect(loop.event.devname).toBe(loop.event.properties.DEVNAME);
    expect(loop.event.devtype).toBe(loop.event.properties.DEVTYPE);
  });
});

describe('parseUevent on the wire-format samples', () => {
  const samples = loadUeventFixtures()
    .flatMap((f) => f.events)
    .filter((e) => e.wire?.bytes_hex !== undefined);

  it('has byte-exact samples of both formats', () => {
    expect(samples.filter((s) => s.wire!.format === 'libudev').length).toBeGreaterThanOrEqual(2);
    expect(samples.filter((s) => s.wire!.format === 'kernel').length).toBeGreaterThanOrEqual(6);
  });

  it.each(samples.map((s, i) => [`${i}: ${s.wire!.format} ${s.action} ${s.devpath}`, s] as const))('%s', (_name, sample) => {
    const bytes = Buffer.from(sample.wire!.bytes_hex!, 'hex');
    const result = parseUevent(bytes, NOW);
    if (sample.wire!.format === 'libudev') {
      expect(result).toMatchObject({ ok: false, reason: 'libudev-format' });
    } else if (bytes[bytes.length - 1] !== 0) {
      // Test vectors from other projects drop the final NUL; the kernel never does.
      expect(result).toMatchObject({ ok: false, reason: 'missing-trailing-nul' });
      const fixed = parseUevent(Buffer.concat([bytes, Buffer.from([0])]), NOW);
      expect(fixed.ok && fixed.event.properties).toEqual(sample.env);
    } else {
      expect(result.ok && result.event.properties).toEqual(sample.env);
    }
  });
});

describe('parseUevent on kernel-layer fixture events re-encoded', () => {
  const events = loadUeventFixtures().flatMap((f) =>
    f.events
      .filter((e) => e.layer === 'kernel' && e.env_in_source && !e.env_partial && e.env.ACTION && e.env.DEVPATH && e.env.SUBSYSTEM)
      .map((e, i) => [`${f.scenario} #${i} ${e.env.ACTION} ${e.env.DEVPATH}`, e] as const),
  );

  it('covers the USB scenarios', () => {
    expect(events.length).toBeGreaterThan(60);
  });

  it.each(events)('%s', (_name, fixture) => {
    const result = parseUevent(encodeKernelDatagram(fixture.env.ACTION!, fixture.env.DEVPATH!, fixture.env), NOW);
    if (!result.ok) throw new Error(`rejected: ${result.reason}: ${result.detail}`);
    expect(result.event.properties).toEqual(fixture.env);
    expect(result.event.action).toBe(fixture.env.ACTION);
    expect(result.event.subsystem).toBe(fixture.env.SUBSYSTEM);
    expect(result.event.driver).toBe(fixture.env.DRIVER);
    expect(result.event.devname).toBe(fixture.env.DEVNAME);
  });
});

describe('parseUevent rejections', () => {
  const good = { ACTION: 'add', DEVPATH: '/devices/virtual/net/v0', SUBSYSTEM: 'net', SEQNUM: '7' };
  const datagram = (env: Record<string, string>, header = `${env.ACTION}@${env.DEVPATH}`) =>
    Buffer.from(`${[header, ...Object.entries(env).map(([k, v]) => `${k}=${v}`)].join('\0')}\0`);

  it.each([
    ['empty', Buffer.alloc(0), 'missing-trailing-nul'],
    ['no trailing NUL', Buffer.from('add@/devices/x\0ACTION=add'), 'missing-trailing-nul'],
    ['libudev magic', Buffer.from('libudev\0\xfe\xed\xca\xfe', 'latin1'), 'libudev-format'],
    ['oversized', Buffer.alloc(MAX_DATAGRAM_BYTES + 1, 0x41), 'oversized'],
    ['invalid UTF-8', Buffer.concat([datagram(good).subarray(0, -1), Buffer.from([0xff, 0xfe, 0])]), 'not-utf8'],
    ['UTF-8 byte-order mark', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), datagram(good)]), 'bad-header'],
    ['header without @', datagram(good, 'add/devices/virtual/net/v0'), 'bad-header'],
    ['header devpath not absolute', datagram(good, 'add@devices'), 'bad-header'],
    ['pair without =', Buffer.from('add@/d\0ACTION=add\0JUNK\0'), 'malformed-pair'],
    ['pair with empty key', Buffer.from('add@/d\0=x\0'), 'malformed-pair'],
    ['empty field', Buffer.from('add@/d\0ACTION=add\0\0DEVPATH=/d\0'), 'malformed-pair'],
    ['duplicate key', Buffer.from('add@/d\0ACTION=add\0ACTION=add\0'), 'duplicate-key'],
    ['missing ACTION', datagram({ DEVPATH: '/d', SUBSYSTEM: 'net' }, 'add@/d'), 'missing-key'],
    ['missing DEVPATH', datagram({ ACTION: 'add', SUBSYSTEM: 'net' }, 'add@/d'), 'missing-key'],
    ['missing SUBSYSTEM', datagram({ ACTION: 'add', DEVPATH: '/d' }), 'missing-key'],
    ['header action differs', datagram(good, 'remove@/devices/virtual/net/v0'), 'header-mismatch'],
    ['header devpath differs', datagram(good, 'add@/devices/virtual/net/v1'), 'header-mismatch'],
    ['devpath with ..', datagram({ ...good, DEVPATH: '/devices/../../etc' }), 'bad-devpath'],
    ['DEVPATH_OLD with ..', datagram({ ...good, DEVPATH_OLD: '/devices/..' }), 'bad-devpath'],
    ['SEQNUM not a number', datagram({ ...good, SEQNUM: '12a' }), 'bad-number'],
    ['MAJOR negative', datagram({ ...good, MAJOR: '-1' }), 'bad-number'],
  ] as const)('%s → %s', (_name, bytes, reason) => {
    const result = parseUevent(bytes, NOW);
    expect(result).toMatchObject({ ok: false, reason });
    if (!result.ok) expect(result.detail.length).toBeGreaterThan(0);
  });

  it('keeps values that contain "=" whole', () => {
    const result = parseUevent(datagram({ ...good, ID_SERIAL: 'a=b=c', EMPTY: '' }), NOW);
    expect(result.ok && result.event.properties.ID_SERIAL).toBe('a=b=c');
    expect(result.ok && result.event.properties.EMPTY).toBe('');
  });

  it('keeps unknown actions as values', () => {
    const result = parseUevent(datagram({ ...good, ACTION: 'frobnicate' }), NOW);
    expect(result.ok && result.event.action).toBe('frobnicate');
  });

  it('keeps a __proto__ key as plain data', () => {
    const result = parseUevent(datagram({ ...good, ['__proto__']: 'x' }), NOW);
    if (!result.ok) throw new Error(result.detail);
    expect(Object.keys(result.event.properties)).toContain('__proto__');
    expect(result.event.properties.__proto__).toBe('x');
    // Nothing inherited: a key that is not in the datagram is simply absent.
    expect('toString' in result.event.properties).toBe(false);
    expect('constructor' in result.event.properties).toBe(false);
  });

  it('accepts UTF-8 values', () => {
    const result = parseUevent(datagram({ ...good, HID_NAME: 'Ünïcødé ✓' }), NOW);
    expect(result.ok && result.event.properties.HID_NAME).toBe('Ünïcødé ✓');
  });
});

describe('parseUevent properties', () => {
  const reasons = new Set<string>(REJECT_REASONS);
  const valid = fc
    .record({
      action: fc.constantFrom('add', 'remove', 'change', 'move', 'bind', 'unbind', 'online', 'offline'),
      devpath: fc.array(fc.stringMatching(/^[a-z0-9:._-]{1,12}$/).filter((s) => s !== '.' && s !== '..'), { minLength: 1, maxLength: 6 }),
      subsystem: fc.stringMatching(/^[a-z_]{1,10}$/),
      extra: fc.dictionary(fc.stringMatching(/^[A-Z_]{1,12}$/), fc.string({ unit: 'grapheme', maxLength: 30 }).map((s) => s.replace(/\0/g, '')), { maxKeys: 8 }),
      seqnum: fc.nat(),
    })
    .map(({ action, devpath, subsystem, extra, seqnum }) => {
      const env: Record<string, string> = { ACTION: action, DEVPATH: `/devices/${devpath.join('/')}`, SUBSYSTEM: subsystem };
      for (const [k, v] of Object.entries(extra)) if (!(k in env) && k !== 'SEQNUM' && k !== 'MAJOR' && k !== 'MINOR' && k !== 'DEVPATH_OLD') env[k] = v;
      env.SEQNUM = String(seqnum);
      return env;
    });

  it('parses every well-formed datagram back to its properties', () => {
    fc.assert(
      fc.property(valid, (env) => {
        const result = parseUevent(encodeKernelDatagram(env.ACTION!, env.DEVPATH!, env), NOW);
        expect(result.ok && result.event.properties).toEqual(env);
      }),
      { numRuns: 2000 },
    );
  });

  it('never throws on random bytes, and rejects with a known reason', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => {
        const result = parseUevent(bytes, NOW);
        if (!result.ok) expect(reasons.has(result.reason)).toBe(true);
      }),
      { numRuns: 5000 },
    );
  });

  it('never throws on mutated real datagrams', () => {
    const seeds = loadKernelCaptures().map((c) => c.datagram);
    const mutated = fc
      .record({
        seed: fc.constantFrom(...seeds),
        edits: fc.array(fc.record({ at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }), { minLength: 1, maxLength: 6 }),
        cut: fc.option(fc.nat()),
      })
      .map(({ seed, edits, cut }) => {
        const bytes = Buffer.from(seed);
        for (const { at, byte } of edits) bytes[at % bytes.length] = byte;
        return cut === null ? bytes : bytes.subarray(0, cut % (bytes.length + 1));
      });
    fc.assert(
      fc.property(mutated, (bytes) => {
        const result = parseUevent(bytes, NOW);
        if (result.ok) {
          expect(result.event.action.length).toBeGreaterThan(0);
          expect(result.event.devpath.startsWith('/')).toBe(true);
        } else {
          expect(reasons.has(result.reason)).toBe(true);
        }
      }),
      { numRuns: 5000 },
    );
  });
});
