// Where things are by default: the one place for roots, directories and paths. Every
// option that can point elsewhere (a fake sysfs tree in tests, a temp dev root) starts here.
import { existsSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Where device nodes and symlinks live. */
export const DEV_ROOT = '/dev';
/** The sysfs mount. */
export const SYSFS_ROOT = '/sys';
/** The proc mount (kernel parameters, the command line). */
export const PROC_ROOT = '/proc';
/** udev's runtime directory: its database (`data/`, `tags/`) and control socket. */
export const UDEV_RUNTIME_DIR = '/run/udev';
/** Where udev rules find programs named without a path. */
export const UDEV_PROGRAM_DIR = '/usr/lib/udev';

/** The package's directory: the nearest above this module with a package.json (src/, dist/ or the bundled CLI in dist/cli/). */
function packageDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json')) && dirname(dir) !== dir) dir = dirname(dir);
  return dir;
}

/** The rules.d shipped with the package. */
export const SHIPPED_RULES_DIR = join(packageDir(), 'rules.d');
/** Rule directories in override order: a file name in an earlier one hides the same name in later ones. */
export const DEFAULT_RULES_DIRS = ['/etc/hotplugd/rules.d', '/run/hotplugd/rules.d', SHIPPED_RULES_DIR];
/** udev's rule directories in override order (`hotplugd daemon --udev`). */
export const UDEV_RULES_DIRS = ['/etc/udev/rules.d', '/run/udev/rules.d', '/usr/local/lib/udev/rules.d', '/usr/lib/udev/rules.d', '/lib/udev/rules.d'];

function isRoot(): boolean {
  return process.getuid?.() === 0;
}

/** `/var/lib/hotplugd/history.db` for root, else under `$XDG_STATE_HOME` (~/.local/state). */
export function defaultDbPath(): string {
  if (isRoot()) return '/var/lib/hotplugd/history.db';
  const state = process.env.XDG_STATE_HOME || join(homedir(), '.local', 'state');
  return join(state, 'hotplugd', 'history.db');
}

/** Where parsed rule files and compiled code are kept between starts: /var/cache/hotplugd as root, else under `$XDG_CACHE_HOME` (~/.cache). */
export function defaultCacheDir(): string {
  if (isRoot()) return '/var/cache/hotplugd';
  return join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'hotplugd');
}

/** `--rules-cache DIR`: the default when not given, none for 'none'. */
export function rulesCacheDirOption(value: string | undefined): string | undefined {
  const chosen = value ?? defaultCacheDir();
  return chosen === 'none' ? undefined : chosen;
}

/** `HOTPLUGD_CODE_CACHE`: where the command line's compiled code is kept, as `--rules-cache` chooses. */
export function codeCacheDir(env: NodeJS.ProcessEnv = process.env): string | undefined {
  return rulesCacheDirOption(env.HOTPLUGD_CODE_CACHE || undefined);
}

/** /run/hotplugd/control.sock as root; for other users, under their runtime directory. */
export function defaultControlPath(): string {
  if (isRoot()) return '/run/hotplugd/control.sock';
  const runtime = process.env.XDG_RUNTIME_DIR || join(tmpdir(), `hotplugd-${process.getuid?.() ?? 'user'}`);
  return join(runtime, 'hotplugd', 'control.sock');
}
