// The shape of src/ as a test: no import circles, no import that runs up a floor, an
// engine that knows no rule language, and no source file past 400 lines. Built from the
// import statements of every source file (type-only imports included: they tie modules
// together just the same for a reader).
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const SRC = resolve(dirname(fileURLToPath(import.meta.url)), '../../src');

/** Floors, lowest first: a module may import its own floor and the ones below it. */
const FLOORS: [floor: number, prefix: string][] = [
  [0, 'text/'], [0, 'defaults.ts'], [0, 'errors.ts'], [0, 'log.ts'], [0, 'private-files.ts'],
  [1, 'uevent/'],
  [2, 'rules/'],
  [3, 'engine/'], [3, 'builtins/'],
  [4, 'frontends/'], [4, 'actions/'], [4, 'history/'], [4, 'udevdb/'],
  [5, 'daemon/'],
  [6, 'client/'], [6, 'server/'], [6, 'cli/'], [6, 'index.ts'],
];

function floorOf(file: string): number {
  const found = FLOORS.find(([, prefix]) => file === prefix || file.startsWith(prefix));
  if (!found) throw new Error(`${file} is on no floor: add its folder to FLOORS`);
  return found[0];
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts') ? [relative(SRC, path)] : [];
  });
}

/** Each source file (relative to src/) and the source files it imports. */
export function moduleGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of sourceFiles(SRC)) {
    const text = readFileSync(join(SRC, file), 'utf8');
    const imports = [...text.matchAll(/^\s*(?:import|export)\b[^;'"]*?\bfrom\s+['"](\.[^'"]+)['"]/gm)].map((m) =>
      relative(SRC, resolve(SRC, dirname(file), m[1] as string)).replace(/\.js$/, '.ts'));
    graph.set(file, imports);
  }
  return graph;
}

/** Strongly connected components with more than one module, or a module importing itself. */
export function importCircles(graph: Map<string, string[]>): string[][] {
  let index = 0;
  const indexOf = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const circles: string[][] = [];
  const visit = (node: string): void => {
    indexOf.set(node, index);
    low.set(node, index++);
    stack.push(node);
    onStack.add(node);
    for (const next of graph.get(node) ?? []) {
      if (!graph.has(next)) continue;
      if (!indexOf.has(next)) {
        visit(next);
        low.set(node, Math.min(low.get(node)!, low.get(next)!));
      } else if (onStack.has(next)) low.set(node, Math.min(low.get(node)!, indexOf.get(next)!));
    }
    if (low.get(node) === indexOf.get(node)) {
      const component: string[] = [];
      let member: string;
      do {
        member = stack.pop()!;
        onStack.delete(member);
        component.push(member);
      } while (member !== node);
      if (component.length > 1 || graph.get(node)!.includes(node)) circles.push(component.sort());
    }
  };
  for (const node of graph.keys()) if (!indexOf.has(node)) visit(node);
  return circles;
}

describe('the module graph of src/', () => {
  const graph = moduleGraph();

  it('finds the imports it checks (every import resolves to a source file)', () => {
    const unresolved = [...graph].flatMap(([file, imports]) => imports.filter((i) => !graph.has(i)).map((i) => `${file} → ${i}`));
    expect(unresolved).toEqual([]);
    expect(graph.get('engine/evaluate.ts')).toContain('rules/ruleset.ts');
  });

  it('has no import circles', () => {
    expect(importCircles(graph)).toEqual([]);
  });

  it('has no import that runs up a floor', () => {
    const upward = [...graph].flatMap(([file, imports]) => imports.filter((i) => floorOf(i) > floorOf(file)).map((i) => `${file} → ${i}`));
    expect(upward).toEqual([]);
  });

  it('keeps the engine free of rule languages: it imports the model, templates, plan, rule index, system view and the text floor only', () => {
    const allowed = /^(engine\/|text\/|defaults\.ts$|uevent\/(event|sysfs)\.ts$|rules\/(model|format|match|plan|ruleset|rule-index|system-view|accounts|builtin)\.ts$)/;
    const leaks = [...graph].filter(([file]) => file.startsWith('engine/')).flatMap(([file, imports]) => imports.filter((i) => !allowed.test(i)).map((i) => `${file} → ${i}`));
    expect(leaks).toEqual([]);
    const dialect = [...graph.keys()].filter((file) => file.startsWith('engine/') && /\b(dialect|udev|mdev|yaml)\b/i.test(readFileSync(join(SRC, file), 'utf8').replace(/\/\/.*|\/\*[\s\S]*?\*\//g, '')));
    expect(dialect).toEqual([]);
  });

  it('has no source file past 400 lines', () => {
    const long = [...graph.keys()].map((file) => [file, readFileSync(join(SRC, file), 'utf8').replace(/\n$/, '').split('\n').length] as const).filter(([, lines]) => lines > 400);
    expect(long).toEqual([]);
  });

  it('catches a circle and an upward import (the checks can fail)', () => {
    const circular = new Map([['a.ts', ['b.ts']], ['b.ts', ['c.ts']], ['c.ts', ['a.ts']], ['d.ts', []]]);
    expect(importCircles(circular)).toEqual([['a.ts', 'b.ts', 'c.ts']]);
    expect(floorOf('engine/evaluate.ts')).toBeGreaterThan(floorOf('rules/model.ts'));
    expect(floorOf('rules/model.ts')).toBeLessThan(floorOf('frontends/udev/compile.ts'));
  });
});
