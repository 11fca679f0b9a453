// Bundles the command line (and the daemon it starts) into one file, dist/cli/hotplugd.cjs,
// and its entry point into dist/cli/main.js, in place of tsc's: Node then reads one module
// at start instead of ~150 of ours and their dependencies', and the entry point runs it
// through V8's code cache (src/cli/launch.ts; bench/startup.js measures both). The bundle is
// CommonJS because only a script, not an ES module, can take a code cache on Node 20. Native
// addons and the packages that load files of their own at run time stay outside. The
// library API (dist/index.js) keeps tsc's modules.
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const common = { bundle: true, platform: 'node', target: 'node20', logLevel: 'warning' };
await build({
  ...common,
  entryPoints: [join(root, 'src', 'cli', 'main.ts')],
  outfile: join(root, 'dist', 'cli', 'hotplugd.cjs'),
  format: 'cjs',
  // better-sqlite3 and the addons are native (node-gyp-build finds ours on disk); pino-pretty and pg load optional parts
  // by name at run time (pino does only for transports, which hotplugd does not use).
  external: ['better-sqlite3', 'pg', 'pino-pretty', 'node-gyp-build', '*.node'],
  // mqtt.js comes from its own bundle beside this one (below), loaded only by a daemon that
  // forwards and by the collector.
  plugins: [{ name: 'mqtt-bundle', setup: (b) => b.onResolve({ filter: /^mqtt$/ }, () => ({ path: './mqtt.cjs', external: true })) }],
  // The modules find the addons, package.json and the web assets from their own URL; the
  // bundle sits in dist/cli/, as tsc's cli modules do.
  define: { 'import.meta.url': '__hotplugdUrl' },
  // The directive first: after the banner, esbuild's own would no longer be one.
  banner: { js: "'use strict';\nconst __hotplugdUrl = require('node:url').pathToFileURL(__filename).href;" },
  sourcemap: 'linked',
  // import() of mqtt and pg becomes require(): Node 20 runs a script that came from the code
  // cache without its dynamic-import callback (ERR_VM_DYNAMIC_IMPORT_CALLBACK_MISSING), and
  // both packages have CommonJS builds.
  supported: { 'dynamic-import': false },
});
// V8 keeps the bundle's source for as long as the process runs (it compiles functions from it
// on first call), one byte per character, or two for all of it if one character is past
// Latin-1. esbuild writes every non-ASCII character of code as an escape; the few left are in
// comments it kept (`/** devpath → links */`), so they are replaced: 1.3 MB less heap.
const bundle = join(root, 'dist', 'cli', 'hotplugd.cjs');
writeFileSync(bundle, readFileSync(bundle, 'utf8').replace(/[^\x00-\x7f]/g, '?'));
// mqtt.js as hotplugd uses it, in one file: Node's module system holds ~160 files of it and
// its dependencies otherwise (~6 MiB of a forwarding board's RSS). Left out: what serves only
// URLs hotplugd refuses (ws://, wss://) or browsers (worker-timers: Node's timers are used),
// and SOCKS proxies (mqtt.js's MQTTJS_SOCKS_PROXY; ~2 MiB); readable-stream, of which mqtt
// and mqtt-packet each carry a copy of the same version, once.
const leftOut = (what) => `const fail = () => { throw new Error(${JSON.stringify(`${what} is left out of hotplugd's build of mqtt.js`)}); };
module.exports = new Proxy(fail, { get: (target, key) => (key === '__esModule' ? false : fail) });`;
const require = createRequire(import.meta.url);
const mqttRequire = createRequire(require.resolve('mqtt'));
await build({
  ...common,
  stdin: { contents: "module.exports = require('mqtt');", resolveDir: root, loader: 'js' },
  outfile: join(root, 'dist', 'cli', 'mqtt.cjs'),
  format: 'cjs',
  plugins: [{
    name: 'mqtt-slim',
    setup(b) {
      const parts = { 'worker-timers': 'worker-timers (for browsers)', './ws': 'WebSocket transport', './socks': 'SOCKS proxy support (MQTTJS_SOCKS_PROXY)' };
      b.onResolve({ filter: /^(worker-timers|\.\/ws|\.\/socks)$/ }, (a) => ({ path: parts[a.path], namespace: 'left-out' }));
      b.onLoad({ filter: /.*/, namespace: 'left-out' }, (a) => ({ contents: leftOut(a.path), loader: 'js' }));
      b.onResolve({ filter: /^readable-stream$/ }, () => ({ path: mqttRequire.resolve('readable-stream') }));
    },
  }],
});
await build({
  ...common,
  entryPoints: [join(root, 'src', 'cli', 'launch.ts')],
  outfile: join(root, 'dist', 'cli', 'main.js'),
  format: 'esm',
});
chmodSync(join(root, 'dist', 'cli', 'main.js'), 0o755);
