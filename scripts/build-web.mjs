// Builds the page `hotplugd serve` ships: web/app.js with uPlot bundled by esbuild into one
// minified script, uPlot's stylesheet and ours into one, and the HTML, into dist/web/. No
// CDN: the page works offline on a board. Prints the sizes.
import { copyFileSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'dist', 'web');
mkdirSync(out, { recursive: true });
await build({
  entryPoints: [join(root, 'web', 'app.js')],
  bundle: true,
  minify: true,
  format: 'esm',
  target: 'es2020',
  outfile: join(out, 'app.js'),
  legalComments: 'eof',
  logLevel: 'warning',
});
const uplotCss = createRequire(import.meta.url).resolve('uplot/dist/uPlot.min.css');
writeFileSync(join(out, 'app.css'), `${readFileSync(uplotCss, 'utf8')}\n${readFileSync(join(root, 'web', 'app.css'), 'utf8')}`);
copyFileSync(join(root, 'web', 'index.html'), join(out, 'index.html'));
const sizes = ['index.html', 'app.js', 'app.css'].map((f) => `${f} ${(statSync(join(out, f)).size / 1024).toFixed(1)} KiB`);
console.log(`dist/web: ${sizes.join(', ')}`);
