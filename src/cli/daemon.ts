import { Daemon } from '../daemon/daemon.js';
import { defaultDbPath } from '../history/db.js';
import { createLogger, isLogLevel } from '../log.js';
import { DEFAULT_RECEIVE_BUFFER_BYTES } from '../uevent/netlink.js';
import { HotplugError } from '../errors.js';
import { parseByteSize, parseCommandArgs, parseDuration, parsePositiveInt, type Command } from './args.js';
import { DEFAULT_RULES_DIRS } from './paths.js';
import { defaultControlPath } from '../daemon/control.js';

const usage = `Usage: hotplugd daemon [options]

Receive every kernel uevent, evaluate the rules for it and record it in the
device history. Devices already present are processed at start as 'add'
events (coldplug). What rules ask for is carried out and recorded: device node
owner/group/mode, symlinks, attribute writes and programs.

Options:
  --db PATH               history database (default: ${defaultDbPath()})
  --rules-dir DIR         a rules directory; repeat for several (default:
                          ${DEFAULT_RULES_DIRS.join(', ')})
  --sysfs ROOT            sysfs root (default: /sys)
  --dev ROOT              where device nodes and symlinks live (default: /dev)
  --dry-run               evaluate the rules and log what would be done; do nothing
  --max-programs N        programs from rules running at once (default: 16)
  --program-timeout DUR   for programs whose rule sets no timeout (default: 30s)
  --modprobe PATH         the modprobe program (default: /sbin/modprobe or
                          wherever it is)
  --control PATH          control socket, used by 'hotplugd reload'
                          (default: ${defaultControlPath()})
  --no-watch              do not reload rules when a rules directory changes
  --no-coldplug           do not record the devices present at start
  --receive-buffer SIZE   kernel socket buffer, e.g. 16M (default: 128M as udevd; as root
                          it is forced past net.core.rmem_max)
  --queue-size N          events held in memory before reading pauses (default: 8192)
  --log-level LEVEL       fatal, error, warn, info, debug, trace or silent (default: info)
  --log-format FORMAT     json, pretty or auto (pretty on a terminal; default: auto)
  -h, --help              show this help

Signals: SIGTERM or SIGINT stop the daemon after recording every accepted event
and giving running programs 5 s to finish (then they are killed);
SIGHUP reloads the rules (kept unchanged if the new ones have errors).

Exit status: 0 after a signal, 1 on an internal error, 2 on a usage error,
3 when the rules have errors at start (each is printed as file:line:column).`;

export const daemonCommand: Command = {
  name: 'daemon',
  summary: 'run the hotplug daemon',
  usage,
  async run(argv) {
    const values = parseCommandArgs('daemon', usage, argv, {
      db: { type: 'string' },
      'rules-dir': { type: 'string', multiple: true },
      sysfs: { type: 'string' },
      dev: { type: 'string' },
      'dry-run': { type: 'boolean' },
      'max-programs': { type: 'string' },
      'program-timeout': { type: 'string' },
      modprobe: { type: 'string' },
      control: { type: 'string' },
      'no-watch': { type: 'boolean' },
      'no-coldplug': { type: 'boolean' },
      'receive-buffer': { type: 'string' },
      'queue-size': { type: 'string' },
      'log-level': { type: 'string' },
      'log-format': { type: 'string' },
    });
    if (values === null) return 0;
    const level = values['log-level'] ?? 'info';
    if (!isLogLevel(level)) throw new HotplugError('EUSAGE', `hotplugd daemon: --log-level expects one of fatal, error, warn, info, debug, trace, silent; got ${JSON.stringify(level)}`);
    const format = values['log-format'] ?? 'auto';
    if (format !== 'auto' && format !== 'json' && format !== 'pretty') {
      throw new HotplugError('EUSAGE', `hotplugd daemon: --log-format expects json, pretty or auto; got ${JSON.stringify(format)}`);
    }
    const logger = createLogger(level, format);
    const daemon = new Daemon({
      dbPath: values.db ?? defaultDbPath(),
      rulesDirs: values['rules-dir'] ?? DEFAULT_RULES_DIRS,
      sysfsRoot: values.sysfs ?? '/sys',
      coldplug: !values['no-coldplug'],
      logger,
      receiveBufferBytes: parseByteSize('daemon', 'receive-buffer', values['receive-buffer'], DEFAULT_RECEIVE_BUFFER_BYTES),
      queueCapacity: parsePositiveInt('daemon', 'queue-size', values['queue-size']),
      controlPath: values.control ?? defaultControlPath(),
      watchRules: !values['no-watch'],
      devRoot: values.dev ?? '/dev',
      dryRun: values['dry-run'] ?? false,
      maxPrograms: parsePositiveInt('daemon', 'max-programs', values['max-programs']),
      programTimeoutMs: parseDuration('daemon', 'program-timeout', values['program-timeout']),
      ...(values.modprobe ? { modprobe: values.modprobe } : {}),
    });
    return await new Promise<number>((resolve, reject) => {
      let stopping = false;
      const stop = (signal: string) => {
        stopping = true;
        logger.info({ signal }, 'Stopping');
        daemon.stopGracefully().then(
          () => resolve(0),
          (error: unknown) => reject(error as Error),
        );
      };
      process.once('SIGTERM', () => stop('SIGTERM'));
      process.once('SIGINT', () => stop('SIGINT'));
      process.on('SIGHUP', () => daemon.reloadRules('SIGHUP'));
      // Only a signal may end the daemon; an empty event loop means the socket watch was lost.
      process.once('beforeExit', () => {
        if (stopping) return;
        logger.fatal('The kernel socket is no longer watched; exiting so a supervisor can restart hotplugd');
        daemon.stop();
        resolve(1);
      });
      daemon.start().then((rules) => {
        if (!rules.diagnostics.some((d) => d.severity === 'error')) return;
        stopping = true;
        logger.fatal({ errors: rules.diagnostics.filter((d) => d.severity === 'error').length }, 'Rules have errors; not starting (see above, or run hotplugd rules check)');
        daemon.stop();
        resolve(3);
      }, (error: unknown) => {
        stopping = true;
        daemon.stop();
        reject(error as Error);
      });
    });
  },
};
