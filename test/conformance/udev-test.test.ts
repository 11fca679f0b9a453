// systemd's udev rules test suite, every case, against hotplugd: every case passes (the
// README says 166 of 166); a failing case is listed with why.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { canUseNamespaces } from '../helpers/netns.js';
import { featureReport, Harness, loadCases, prepareSysfs } from './udev-harness.js';

const root = canUseNamespaces();

describe.runIf(root)('udev rules conformance (systemd test-udev.py cases)', () => {
  const work = mkdtempSync(join(tmpdir(), 'hotplugd-conformance-'));
  const devRoot = join(work, 'dev');
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it('passes every case', () => {
    const cases = loadCases();
    const harness = new Harness(devRoot, prepareSysfs(work));
    const failures = new Map<string, string>();
    for (const c of cases) {
      const failure = harness.run(c);
      if (failure !== undefined) failures.set(c.id, `${c.desc}: ${failure}`);
    }
    const { markdown, rows } = featureReport(cases, failures);
    const passed = cases.length - failures.size;
    const summary = `udev conformance: ${passed}/${cases.length} cases passed (${((passed / cases.length) * 100).toFixed(1)}%)`;
    const report = [summary, '', markdown, '', 'Failing cases:', ...[...failures].map(([id, why]) => `- ${id} ${why}`)].join('\n');
    // The report stays beside the other test artifacts (git-ignored), not in the machine's /tmp.
    const artifacts = join(import.meta.dirname, '../../test-artifacts');
    mkdirSync(artifacts, { recursive: true });
    writeFileSync(join(artifacts, 'udev-conformance.md'), `${report}\n`);
    console.log(report);
    expect(rows.length).toBeGreaterThan(40);
    expect(cases.length).toBe(166);
    expect([...failures]).toEqual([]);
  }, 300_000);
});
