import { describe, expect, it } from 'vitest';
import { siphash24 } from './siphash24.js';

// The reference vectors of the SipHash paper (key 00..0f, message 00..len-1).
const key = Uint8Array.from({ length: 16 }, (_, i) => i);
const message = (length: number) => Uint8Array.from({ length }, (_, i) => i);

describe('siphash24', () => {
  it('gives the paper\'s outputs', () => {
    expect(siphash24(message(0), key)).toBe(0x726fdb47dd0e0e31n);
    expect(siphash24(message(8), key)).toBe(0x93f5f5799a932462n);
    expect(siphash24(message(15), key)).toBe(0xa129ca6149be45e5n);
    expect(siphash24(message(63), key)).toBe(0x958a324ceb064572n);
  });
  it('refuses a key of the wrong size', () => {
    expect(() => siphash24(message(1), new Uint8Array(8))).toThrow(/16 bytes/);
  });
});
