// Removes the code cache directory of this test run (vitest.config.ts).
import { rmSync } from 'node:fs';

export function teardown(): void {
  const dir = process.env.HOTPLUGD_TEST_CODE_CACHE;
  if (dir) rmSync(dir, { recursive: true, force: true });
}
