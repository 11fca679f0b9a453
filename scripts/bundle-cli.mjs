// Bundles the command line (and the daemon it starts) into one file, dist/cli/main.js, in
// place of tsc's: Node then reads and compiles one module at start instead of ~150 of ours
// and their dependencies' (bench/startup.js measures it). Native addons and the packages that
// load files of their own at run time stay outside. The library API (dist/index.js) keeps
// tsc's modules.
import { chmodSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
await build({
  entryPoints: [join(root, 'src', 'cli', 'main.ts')],
  outfile: join(root, 'dist', 'cli', 'main.js'),
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  // better-sqlite3 and the addons are native; pino-pretty, pg and mqtt load optional parts
  // by name at run time (pino does only for transports, which hotplugd does not use).
  external: ['better-sqlite3', 'pg', 'mqtt', 'pino-pretty', '*.node'],
  // CommonJS dependencies bundled into an ES module still call require().
  banner: { js: "import { createRequire as __hotplugdRequire } from 'node:module';\nconst require = __hotplugdRequire(import.meta.url);" },
  sourcemap: 'linked',
  logLevel: 'warning',
});
chmodSync(join(root, 'dist', 'cli', 'main.js'), 0o755);
