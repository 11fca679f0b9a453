import { defineConfig } from 'vitest/config';

// In CI the results also go to a JSON file, which .ci/run reads to fail on any skipped test.
const ci = process.env.CI === 'true';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    // Commands the tests start keep no compiled code in the machine's /var/cache (the code
    // cache's own tests give it a directory of theirs).
    env: { HOTPLUGD_CODE_CACHE: 'none' },
    testTimeout: 60_000,
    hookTimeout: 60_000,
    reporters: ci ? ['default', ['json', { outputFile: '.ci/results.json' }]] : ['default'],
  },
});
