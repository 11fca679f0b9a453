// The rule cache is a shortcut only: a changed file is parsed again, a corrupt or foreign
// cache is ignored, and what is loaded (rules and diagnostics) is what parsing gives.
import { chmodSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { makeTempDir } from '../../test/helpers/netns.js';
import { staticAccounts } from '../os/accounts.js';
import { formatDiagnostic } from '../rules/model.js';
import { loadRules } from './load.js';
import { openRuleCache } from './rules-cache.js';

const ACCOUNTS = staticAccounts({ root: 0 }, { root: 0 });
let temp: { path: string; remove(): void };
let rulesDir: string;
let cacheDir: string;

beforeEach(() => {
  temp = makeTempDir('rules-cache');
  rulesDir = join(temp.path, 'rules.d');
  cacheDir = join(temp.path, 'cache');
  mkdirSync(rulesDir);
});
afterEach(() => temp.remove());

const load = (cache = true) => loadRules([rulesDir], { accounts: ACCOUNTS, ...(cache ? { cache: openRuleCache(cacheDir) } : {}) });
const names = (result: ReturnType<typeof load>) => result.ruleSet.rules.map((r) => r.name);
const cacheFile = () => join(cacheDir, 'rules.json');

describe('the rule cache', () => {
  it('gives a second load the parsed tree of an unchanged file, and parses a changed one again', () => {
    const file = join(rulesDir, '10-a.yaml');
    writeFileSync(file, 'rules:\n  - name: first\n    match: { subsystem: tty }\n');
    expect(names(load())).toEqual(['first']);
    // Edit what the cache holds: a load that shows the edit took the cached tree.
    const data = JSON.parse(readFileSync(cacheFile(), 'utf8'));
    const text = JSON.stringify(data).replace('"first"', '"from-cache"');
    writeFileSync(cacheFile(), text);
    expect(names(load())).toEqual(['from-cache']);
    // The same length, written again: size alone does not hide a change.
    writeFileSync(file, 'rules:\n  - name: other\n    match: { subsystem: tty }\n');
    expect(names(load())).toEqual(['other']);
    expect(names(load(false))).toEqual(['other']);
  });

  it('reports the same file:line:column from a cached parse as from a fresh one', () => {
    writeFileSync(join(rulesDir, '10-bad.yaml'), 'rules:\n  - name: x\n    match: { subsytem: tty }\n  - name: y\n    set: { mode: "09" }\n');
    writeFileSync(join(rulesDir, '20-broken.yaml'), 'rules:\n  - name: [unclosed\n');
    const fresh = load(false).diagnostics.map(formatDiagnostic);
    expect(fresh.length).toBeGreaterThanOrEqual(3);
    const first = load();
    const second = load();
    expect(first.diagnostics.map(formatDiagnostic)).toEqual(fresh);
    expect(second.diagnostics.map(formatDiagnostic)).toEqual(fresh);
    expect(second.ok).toBe(false);
  });

  it('ignores a cache caught mid-write and writes it anew', () => {
    writeFileSync(join(rulesDir, '10-a.yaml'), 'rules:\n  - name: a\n    match: { subsystem: tty }\n');
    load();
    const whole = readFileSync(cacheFile(), 'utf8');
    writeFileSync(cacheFile(), whole.slice(0, whole.length >> 1));
    const result = load();
    expect(names(result)).toEqual(['a']);
    expect(result.cacheError).toBeUndefined();
    expect(() => JSON.parse(readFileSync(cacheFile(), 'utf8'))).not.toThrow();
  });

  it('does not trust a directory others can write to, and says why it wrote nothing', () => {
    writeFileSync(join(rulesDir, '10-a.yaml'), 'rules:\n  - name: a\n    match: { subsystem: tty }\n');
    load();
    const data = JSON.parse(readFileSync(cacheFile(), 'utf8'));
    writeFileSync(cacheFile(), JSON.stringify(data).replace('"a"', '"planted"'));
    chmodSync(cacheDir, 0o777);
    const result = load();
    expect(names(result)).toEqual(['a']);
    expect(result.cacheError).toMatch(/only it can write/);
  });

  it('keeps at most 256 files, the most recently used', () => {
    for (let i = 0; i < 260; i++) writeFileSync(join(rulesDir, `${String(i).padStart(3, '0')}.yaml`), `rules:\n  - name: r${i}\n    match: { subsystem: tty }\n`);
    expect(load().ruleSet.rules).toHaveLength(260);
    const data = JSON.parse(readFileSync(cacheFile(), 'utf8'));
    expect(Object.keys(data.entries)).toHaveLength(256);
    expect(readdirSync(cacheDir)).toEqual(['rules.json']);
  });
});
