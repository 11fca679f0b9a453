// Every benchmark section is { markdown, json }: printed, and saved under bench/results/.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO } from './system.js';

export const RESULTS = join(REPO, 'bench', 'results');

export function printAndSave(name, section) {
  mkdirSync(RESULTS, { recursive: true });
  writeFileSync(join(RESULTS, `${name}.json`), `${JSON.stringify({ at: new Date().toISOString(), node: process.version, ...section.json }, null, 2)}\n`);
  writeFileSync(join(RESULTS, `${name}.md`), `${section.markdown}\n`);
  console.log(section.markdown);
}
