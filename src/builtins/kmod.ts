// kmod: `RUN{builtin}+="kmod load $env{MODALIAS}"` loads modules by alias; hotplugd hands
// them to its module loader (modprobe, after the rules), which records each outcome.
import type { Builtin } from '../rules/builtin.js';

export const kmod: Builtin = {
  name: 'kmod',
  summary: 'load kernel modules by alias: kmod load ALIAS...',
  run(argv, context) {
    if (argv[1] !== 'load') return { failed: `kmod: expected "kmod load ALIAS...", got "${argv.slice(1).join(' ')}"` };
    // As udev: `kmod load` with no alias loads the device's MODALIAS (Debian's
    // 80-drivers.rules says just that).
    const given = argv.slice(2);
    const aliases = (given.length > 0 ? given : [context.properties.MODALIAS ?? '']).filter((a) => a !== '');
    // Nothing to load (an empty $env{MODALIAS}) is not a failure, as in udev.
    return { modules: aliases };
  },
};
