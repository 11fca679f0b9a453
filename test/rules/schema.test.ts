// The JSON Schema editors use for completion must agree with the loader: every shipped
// rule file validates, and typical mistakes are flagged.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import Ajv2020 from 'ajv/dist/2020.js';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';

const REPO = join(import.meta.dirname, '..', '..');
const schema = JSON.parse(readFileSync(join(REPO, 'schema', 'rules.schema.json'), 'utf8')) as object;
const validate = new Ajv2020.default({ allErrors: true, strict: true, allowUnionTypes: true }).compile(schema);

describe('rules.schema.json', () => {
  const shipped = [
    ...readdirSync(join(REPO, 'rules.d')).filter((f) => f.endsWith('.yaml')).map((f) => join('rules.d', f)),
    ...readdirSync(join(REPO, 'examples')).filter((f) => f.endsWith('.yaml')).map((f) => join('examples', f)),
  ];
  it.each(shipped)('accepts the shipped %s', (file) => {
    // Parsed as an editor would (core schema: 0660 is a number, true a boolean).
    const ok = validate(parse(readFileSync(join(REPO, file), 'utf8')));
    expect(validate.errors ?? []).toEqual([]);
    expect(ok).toBe(true);
  });

  const mistakes: [string, string][] = [
    ['a misspelt match key', 'rules:\n  - match: { subsytem: tty }\n'],
    ['a run entry as a shell string', 'rules:\n  - run: ["logger hi"]\n'],
    ['a run map without argv', 'rules:\n  - run: [{ timeout: 5s }]\n'],
    ['an unknown top-level key', 'rule: []\n'],
    ['a non-octal mode', 'rules:\n  - set: { mode: "rw-rw----" }\n'],
  ];
  it.each(mistakes)('rejects %s', (_, text) => {
    expect(validate(parse(text))).toBe(false);
  });
});
