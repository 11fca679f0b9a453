import { defaultControlPath } from '../defaults.js';
// `hotplugd log-level` and `hotplugd exit`: small requests to the running daemon (root only).
import { sendControlRequest } from '../control/protocol.js';
import { LOG_LEVELS } from '../log.js';
import { parseCommandArgs, parseCommandLine, usageError, type Command } from './args.js';

const logLevelUsage = `Usage: hotplugd log-level LEVEL [--control PATH]

Change the running daemon's log level without restarting it.
LEVEL is one of ${LOG_LEVELS.join(', ')}.

Options:
  --control PATH   the daemon's control socket (default: ${defaultControlPath()})
  -h, --help       show this help`;

export const logLevelCommand: Command = {
  name: 'log-level',
  usage: logLevelUsage,
  async run(argv) {
    const parsed = parseCommandLine('log-level', logLevelUsage, argv, { control: { type: 'string' } });
    if (parsed === null) return 0;
    const [level, ...extra] = parsed.positionals;
    if (level === undefined || extra.length > 0) throw usageError('log-level', `expects one level: ${LOG_LEVELS.join(', ')}`);
    const reply = await sendControlRequest(parsed.values.control ?? defaultControlPath(), { command: 'log-level', level });
    if (!reply.ok) {
      console.error(`hotplugd log-level: ${reply.error}`);
      return 1;
    }
    console.log(`Log level: ${String(reply.previous)} -> ${String(reply.level)}`);
    return 0;
  },
};

const exitUsage = `Usage: hotplugd exit [--control PATH]

Ask the running daemon to stop as on SIGTERM: finish the queued events, record
everything, exit 0.

Options:
  --control PATH   the daemon's control socket (default: ${defaultControlPath()})
  -h, --help       show this help`;

export const exitCommand: Command = {
  name: 'exit',
  usage: exitUsage,
  async run(argv) {
    const values = parseCommandArgs('exit', exitUsage, argv, { control: { type: 'string' } });
    if (values === null) return 0;
    const reply = await sendControlRequest(values.control ?? defaultControlPath(), { command: 'exit' });
    if (!reply.ok) {
      console.error(`hotplugd exit: ${reply.error}`);
      return 1;
    }
    return 0;
  },
};
