// Where things are by default.
import { fileURLToPath } from 'node:url';

/** The rules.d shipped with the package (two levels above dist/cli or src/cli). */
export const SHIPPED_RULES_DIR = fileURLToPath(new URL('../../rules.d', import.meta.url));

/** Rule directories in override order: a file name in an earlier one hides the same name in later ones. */
export const DEFAULT_RULES_DIRS = ['/etc/hotplugd/rules.d', '/run/hotplugd/rules.d', SHIPPED_RULES_DIR];
