// `hotplugd rules check`: the linter.
import { printable } from './output.js';
import { statSync } from 'node:fs';
import { formatDiagnostic, type Diagnostic } from '../rules/model.js';
import { lintRuleSet } from '../frontends/lint.js';
import { loadRules, loadRulesAndFiles, type LoadResult } from '../frontends/load.js';
import { parseCommandLine, usageError, type Command } from './args.js';
import { DEFAULT_RULES_DIRS } from '../defaults.js';

const usage = `Usage: hotplugd rules check [options] [PATH...]

Load rule files as the daemon would and report every problem as
file:line:column: severity: message. Also warns about rules that can never
match, duplicate rule names and files hidden by an override.

PATH is a rule file or a rules directory; directories given together override
each other in the order given (first wins), as the daemon's do. Without PATH,
the daemon's directories are checked:
  ${DEFAULT_RULES_DIRS.join('\n  ')}

Options:
  --rules-dir DIR   a rules directory (repeatable; same as giving it as PATH)
  --json            print the diagnostics as one JSON array
  -h, --help        show this help

Exit status: 0 when there are no errors (warnings allowed), 1 on errors, 2 on
a usage error.`;

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** Loads what the user named: directories as one overriding set, then single files. */
function loadForCheck(paths: string[]): LoadResult {
  return loadRulesAndFiles(paths.filter(isDirectory), paths.filter((p) => !isDirectory(p)));
}

export const rulesCommand: Command = {
  name: 'rules',
  usage,
  async run(argv) {
    const [sub, ...rest] = argv;
    if (sub === '--help' || sub === '-h') {
      console.log(usage);
      return 0;
    }
    if (sub !== 'check') throw usageError('rules', sub === undefined ? 'expected a subcommand: check' : `unknown subcommand ${JSON.stringify(sub)} (expected: check)`);
    const parsed = parseCommandLine('rules check', usage, rest, { 'rules-dir': { type: 'string', multiple: true }, json: { type: 'boolean' } });
    if (parsed === null) return 0;
    const paths = [...(parsed.values['rules-dir'] ?? []), ...parsed.positionals];
    for (const path of paths) {
      try {
        statSync(path);
      } catch {
        throw usageError('rules check', `no such file or directory: ${path}`);
      }
    }
    const result = paths.length > 0 ? loadForCheck(paths) : loadRules(DEFAULT_RULES_DIRS);
    const diagnostics: Diagnostic[] = [...result.diagnostics, ...lintRuleSet(result.ruleSet)];
    const errors = diagnostics.filter((d) => d.severity === 'error').length;
    if (parsed.values.json) {
      console.log(JSON.stringify(diagnostics.map((d) => ({ file: d.at.file, line: d.at.line, column: d.at.column, severity: d.severity, message: d.message, hint: d.hint ?? null }))));
    } else {
      for (const d of diagnostics) console.log(formatDiagnostic(d));
      for (const f of result.ruleSet.files) if (f.steppedAside) console.error(`${printable(f.path)}: steps aside (beside-udev: step-aside): udev's own rules are loaded`);
      const files = result.ruleSet.files.length;
      console.error(`${files} file${files === 1 ? '' : 's'}, ${result.ruleSet.rules.length} rules loaded: ${errors} errors, ${diagnostics.length - errors} warnings`);
    }
    return errors > 0 ? 1 : 0;
  },
};
