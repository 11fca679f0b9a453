// LogThrottle: one line per kind per interval, each told how many were held back.
import { describe, expect, it, vi } from 'vitest';
import { LogThrottle } from './log.js';

describe('LogThrottle', () => {
  it('lets one line per kind through per interval and counts the rest', () => {
    vi.useFakeTimers();
    try {
      const lines: string[] = [];
      const logs = new LogThrottle(1000);
      for (let i = 0; i < 5; i++) logs.run('a', (held) => lines.push(`a ${held}`));
      logs.run('b', (held) => lines.push(`b ${held}`));
      vi.advanceTimersByTime(1000);
      logs.run('a', (held) => lines.push(`a ${held}`));
      expect(lines).toEqual(['a 0', 'b 0', 'a 4']);
    } finally {
      vi.useRealTimers();
    }
  });
});
