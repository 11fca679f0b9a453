// udev builtins that hotplugd recognises (so stock rules load) but cannot carry out: each
// run fails with the reason, which `hotplugd test` and the history show.
import type { Builtin } from '../rules/builtin.js';

export function unsupported(name: string, what: string): Builtin {
  return {
    name,
    summary: `not supported: ${what}`,
    run: () => ({ failed: `builtin ${name} is not supported by hotplugd (it ${what})`, unsupported: true }),
  };
}
