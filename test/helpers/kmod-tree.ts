// A kernel modules tree made by the real depmod from small modules: each an ELF object with a
// .modinfo section (its aliases) whose symbols make the dependencies (__ksymtab_strings names
// what it exports, an undefined symbol uses it), so libkmod's own tools (modprobe -R, --show-depends) can
// be asked beside our reading of it. Never loaded: these are not real modules.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const KMOD_VERSION = '6.1.0-test';

export interface FakeModule {
  aliases?: string[];
  /** Symbols it exports. */
  exports?: string[];
  /** Symbols it uses (exported by others). */
  uses?: string[];
}

export interface KmodTree {
  root: string;
  /** ROOT/lib/modules/VERSION. */
  modules: string;
  /** A modprobe.d directory (empty unless written). */
  conf: string;
  depmod(): void;
  /** libkmod's answer for an alias: the modules it resolves to (`modprobe -R`), each once. */
  resolves(alias: string): string[];
  /** libkmod's load order with options (`modprobe --show-depends`): "name options" per module. */
  showDepends(alias: string): string[];
  remove(): void;
}

export function kmodTree(modulesByName: Record<string, FakeModule>, builtinModinfo = ''): KmodTree {
  const root = mkdtempSync(join(tmpdir(), 'hotplugd-kmod-'));
  const modules = join(root, 'lib/modules', KMOD_VERSION);
  const conf = join(root, 'modprobe.d');
  const drivers = join(modules, 'kernel/drivers');
  mkdirSync(drivers, { recursive: true });
  mkdirSync(conf);
  for (const [name, module] of Object.entries(modulesByName)) {
    const source = join(root, `${name}.c`);
    const exported = (module.exports ?? []).map((s) => `int ${s};`);
    const used = (module.uses ?? []).map((s, i) => `extern int ${s}; int use_${i}(void) { return ${s}; }`);
    writeFileSync(source, [...exported, ...used, `int hotplugd_${name.replaceAll("-", "_")};`, ''].join('\n'));
    execFileSync('gcc', ['-c', source, '-o', join(root, `${name}.o`)]);
    const modinfo = join(root, `${name}.modinfo`);
    writeFileSync(modinfo, [...(module.aliases ?? []).map((a) => `alias=${a}`), `name=${name}`, `vermagic=${KMOD_VERSION} SMP mod_unload`, ''].join('\0'));
    // depmod reads a module's exports from its __ksymtab_strings section.
    const strings = join(root, `${name}.ksymtab`);
    writeFileSync(strings, (module.exports ?? []).map((s) => `${s}\0`).join(''));
    const sections = ['--add-section', `.modinfo=${modinfo}`, ...(module.exports?.length ? ['--add-section', `__ksymtab_strings=${strings}`] : [])];
    execFileSync('objcopy', [...sections, join(root, `${name}.o`), join(drivers, `${name}.ko`)]);
  }
  writeFileSync(join(modules, 'modules.builtin'), 'kernel/drivers/tty/serial/8250/8250.ko\nkernel/fs/tracefs/tracefs.ko\n');
  writeFileSync(join(modules, 'modules.builtin.modinfo'), builtinModinfo);
  const modprobe = (args: string[]) => {
    try {
      return execFileSync('modprobe', ['-d', root, '-S', KMOD_VERSION, '-C', conf, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    } catch {
      return ''; // exit 1: no module
    }
  };
  const tree: KmodTree = {
    root,
    modules,
    conf,
    depmod: () => execFileSync('depmod', ['-b', root, KMOD_VERSION], { stdio: 'pipe' }),
    resolves: (alias) => [...new Set(modprobe(['-R', '--', alias]).split('\n').filter(Boolean))],
    showDepends: (alias) =>
      modprobe(['--show-depends', '--', alias])
        .split('\n')
        .filter((line) => line.startsWith('insmod '))
        .map((line) => {
          const [, path, ...options] = line.trim().split(/\s+/);
          return [path!.slice(path!.lastIndexOf('/') + 1, -'.ko'.length), ...options].join(' ');
        }),
    remove: () => rmSync(root, { recursive: true, force: true }),
  };
  tree.depmod();
  return tree;
}
