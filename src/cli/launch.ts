#!/usr/bin/env node
// The command line's entry point (dist/cli/main.js). It runs the bundled command line
// (dist/cli/hotplugd.cjs) as node would run a CommonJS module, but through vm.Script, which
// takes V8's code cache: the first run keeps the bytecode it compiled (code-cache.ts), and
// later starts skip parsing and compiling most of the bundle.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { Script } from 'node:vm';
import { codeCacheDir } from '../defaults.js';
import { openCodeCache } from './code-cache.js';

// Most of what a daemon compiles has been compiled a few seconds after its start; shorter
// commands keep their code when they exit.
const SAVE_AFTER_MS = 5_000;

const bundle = join(dirname(fileURLToPath(import.meta.url)), 'hotplugd.cjs');
const daemon = process.argv[2] === 'daemon';
const nodeFlags = `${process.execArgv.join(' ')} ${process.env.NODE_OPTIONS ?? ''}`;
// A daemon's old generation grows by a quarter over what survived the last full collection,
// not V8's 1.1–4×: garbage is collected sooner and a storm's peak RSS stays lower
// (docs/benchmarks.md, Memory). Set before compiling, because V8 refuses a code cache made
// under other flags; a value given on node's command line is kept.
if (daemon && !nodeFlags.includes('--heap-growing-percent')) setFlagsFromString('--heap-growing-percent=25');

/** The bundle compiled, from the code cache when it has one V8 takes; a refused or missing cache is written once this run has compiled what it uses. */
function compile(): Script {
  let cache;
  try {
    cache = openCodeCache(bundle, codeCacheDir(), daemon ? 'daemon' : 'command');
  } catch {
    cache = undefined; // no cache is only slower
  }
  const source = readFileSync(bundle, 'utf8');
  const script = new Script(`(function (exports, require, module, __filename, __dirname) {${source.startsWith('#!') ? `//${source.slice(2)}` : source}\n})`, {
    filename: bundle,
    // No dynamic-import callback: on Node 20 a script from the code cache loses it, so the
    // bundle has no import() (scripts/bundle-cli.mjs).
    cachedData: cache?.data,
  });
  if (cache !== undefined && (cache.data === undefined || script.cachedDataRejected === true)) {
    const writer = cache;
    let saved = false;
    const save = (): void => {
      if (saved) return;
      saved = true;
      writer.save(() => script.createCachedData());
    };
    setTimeout(save, SAVE_AFTER_MS).unref();
    process.once('exit', save);
  }
  return script;
}

const module = { exports: {} };
(compile().runInThisContext() as (...args: unknown[]) => void).call(module.exports, module.exports, createRequire(bundle), module, bundle, dirname(bundle));
