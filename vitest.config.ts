import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defineConfig } from 'vitest/config';

// In CI the results also go to a JSON file, which .ci/run reads to fail on any skipped test.
const ci = process.env.CI === 'true';

// Commands the tests start keep their compiled code in a directory of this run, not the
// machine's /var/cache; the first command fills it and the rest start from it, so every
// test runs the bundle as it runs from the code cache. test/global-setup.ts removes it.
process.env.HOTPLUGD_TEST_CODE_CACHE ??= join(tmpdir(), `hotplugd-test-code-cache-${process.pid}`);

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    env: { HOTPLUGD_CODE_CACHE: process.env.HOTPLUGD_TEST_CODE_CACHE },
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    reporters: ci ? ['default', ['json', { outputFile: '.ci/results.json' }]] : ['default'],
  },
});
