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
  [1, 'os/'],
  [2, 'uevent/'],
  [3, 'rules/'],
  [4, 'engine/'], [4, 'builtins/'], [4, 'udev/'],
  [5, 'frontends/'], [5, 'actions/'], [5, 'history/'],
  [6, 'pipeline/'], [6, 'control/'], [6, 'fleet/'],
  [7, 'daemon/'],
  [8, 'client/'], [8, 'server/'], [8, 'cli/'], [8, 'index.ts'],
];

/** Imports that are never allowed, whatever the floors say: [importer, imported, why]. */
const FORBIDDEN: [from: RegExp, to: RegExp, why: string][] = [
  [/^(client|server)\//, /^(daemon|pipeline)\//, 'clients of the protocol never carry the daemon'],
  [/^cli\/(?!daemon\.ts$|collect\.ts$)/, /^(daemon|pipeline)\//, 'only the daemon and collect commands run a server; the others are clients'],
  [/^pipeline\//, /^(fleet|control)\//, 'the pipeline hands events on through its own interfaces'],
];

/** The rules of FORBIDDEN broken by a graph. */
export function forbiddenImports(graph: Map<string, string[]>): string[] {
  return [...graph].flatMap(([file, imports]) => imports.flatMap((i) =>
    FORBIDDEN.filter(([from, to]) => from.test(file) && to.test(i)).map(([, , why]) => `${file} → ${i}: ${why}`)));
}

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

  it('keeps clients and the pipeline out of the rooms they must not enter', () => {
    expect(forbiddenImports(graph)).toEqual([]);
  });

  it('keeps the engine free of rule languages: it imports the model, templates, plan, rule index, system view and the text floor only', () => {
    const allowed = /^(engine\/|text\/|defaults\.ts$|os\/accounts\.ts$|uevent\/(event|sysfs)\.ts$|rules\/(model|format|match|plan|ruleset|rule-index|system-view|builtin)\.ts$)/;
    // context.ts gives the engine's reads their sources, the same for the daemon and the dry runs.
    const sources = /^(os\/system-calls|udev\/database|uevent\/ancestors)\.ts$/;
    const leaks = [...graph].filter(([file]) => file.startsWith('engine/')).flatMap(([file, imports]) =>
      imports.filter((i) => !allowed.test(i) && !(file === 'engine/context.ts' && sources.test(i))).map((i) => `${file} → ${i}`));
    expect(leaks).toEqual([]);
    // Import lines name modules (udev's database among them); the code below them must not branch on a rule language.
    const code = (file: string) => readFileSync(join(SRC, file), 'utf8').replace(/\/\/.*|\/\*[\s\S]*?\*\//g, '').replace(/^\s*import\b[^;]*;/gm, '');
    const dialect = [...graph.keys()].filter((file) => file.startsWith('engine/') && /\b(dialect|udev|mdev|yaml)\b/i.test(code(file)));
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
    const leaky = new Map([['client/client.ts', ['daemon/daemon.ts']], ['cli/info.ts', ['pipeline/scheduler.ts']], ['cli/daemon.ts', ['daemon/daemon.ts']], ['pipeline/publisher.ts', ['control/subscribers.ts', 'fleet/forward.ts']], ['server/http.ts', ['pipeline/worker.ts']]]);
    expect(forbiddenImports(leaky)).toHaveLength(5);
  });
});
