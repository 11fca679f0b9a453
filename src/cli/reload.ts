import { defaultControlPath } from '../defaults.js';
// `hotplugd reload`: ask the running daemon to load its rules again.
import { sendControlRequest } from '../control/protocol.js';
import { formatDiagnostic, type Diagnostic } from '../rules/model.js';
import { parseCommandArgs, type Command } from './args.js';

const usage = `Usage: hotplugd reload [options]

Ask the running daemon to load its rule directories again. The new rules
replace the running ones only if they load without errors; otherwise the
errors are printed and the daemon keeps its previous rules.

Options:
  --control PATH   the daemon's control socket (default: ${defaultControlPath()})
  -h, --help       show this help

Exit status: 0 when the new rules are in use, 1 when they had errors or the
daemon could not be reached.`;

export const reloadCommand: Command = {
  name: 'reload',
  usage,
  async run(argv) {
    const values = parseCommandArgs('reload', usage, argv, { control: { type: 'string' } });
    if (values === null) return 0;
    const reply = await sendControlRequest(values.control ?? defaultControlPath(), { command: 'reload' });
    for (const d of (reply.diagnostics as Diagnostic[] | undefined) ?? []) console.error(formatDiagnostic(d));
    if (!reply.ok) {
      console.error(`hotplugd reload: ${reply.error}`);
      return 1;
    }
    console.log(`Rules reloaded: ${String(reply.rules)} rules from ${String(reply.files)} files (version ${String(reply.version)})`);
    return 0;
  },
};
