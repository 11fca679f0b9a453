import { DEFAULT_RULES_DIRS, DEV_ROOT, SYSFS_ROOT, UDEV_RULES_DIRS, UDEV_RUNTIME_DIR, defaultCacheDir, defaultControlPath, defaultDbPath, rulesCacheDirOption } from '../defaults.js';
import { Daemon } from '../daemon/daemon.js';
import { DEFAULT_MAX_EVENTS, DEFAULT_QUEUE_CAPACITY, DEFAULT_STOP_TIMEOUT_MS } from '../daemon/options.js';
import { DEFAULT_EVENT_TIMEOUT_MS } from '../pipeline/worker.js';
import { DEFAULT_CONTROL_LIMITS } from '../control/server.js';
import { DEFAULT_MAX_SUBSCRIBERS } from '../control/subscribers.js';
import { loadAccounts } from '../os/accounts.js';

import { DEFAULT_RETENTION, type RetentionLimits } from '../history/retention.js';
import { parseDurationMs, parseSizeBytes } from '../text/units.js';
import { createLogger, isLogLevel, type Logger } from '../log.js';
import { DEFAULT_RECEIVE_BUFFER_BYTES } from '../os/netlink.js';
import { DEFAULT_ROUTE_RECEIVE_BUFFER_BYTES } from '../uevent/route-source.js';
import { FORWARD_OPTIONS, FORWARD_USAGE, forwardOptions } from './forward-options.js';
import { HotplugError } from '../errors.js';
import { parseByteSize, parseCommandArgs, parseDuration, parsePositiveInt, type Command } from './args.js';


const usage = `Usage: hotplugd daemon [options]

Receive every kernel uevent, evaluate the rules for it and record it in the
device history. Devices already present are processed at start as 'add'
events (coldplug). What rules ask for is carried out and recorded: device node
owner/group/mode, symlinks, attribute writes and programs.

Options:
  --db PATH               history database (default: ${defaultDbPath()})
  --rules-dir DIR         a rules directory; repeat for several (default:
                          ${DEFAULT_RULES_DIRS.join(', ')})
  --udev                  also load udev's rule files (.rules in /etc/udev/rules.d,
                          /run/udev/rules.d, /usr/local/lib/udev/rules.d,
                          /usr/lib/udev/rules.d, /lib/udev/rules.d), ordered with
                          hotplugd's own by file name, and keep udev's database
                          in /run/udev for udevadm and libudev clients
  --udev-db DIR           keep udev's database in DIR (default with --udev: /run/udev;
                          'none' for none)
  --sysfs ROOT            sysfs root (default: /sys)
  --dev ROOT              where device nodes and symlinks live (default: /dev)
  --dry-run               evaluate the rules and log what would be done; do nothing
  --max-programs N        programs from rules running at once (default: 16)
  --program-timeout DUR   for programs whose rule sets no timeout (default: 30s)
  --modprobe PATH         the modprobe program (default: /sbin/modprobe or
                          wherever it is)
  --control PATH          control socket for status, reload, settle, subscribe...
                          (default: ${defaultControlPath()})
  --control-group GROUP   members may use the read-only control commands
                          (status, settle, wait, subscribe); default: root only
  --max-connections N     control connections open at once, subscribers included;
                          more are refused and counted (default: ${DEFAULT_CONTROL_LIMITS.total})
  --max-connections-per-uid N
                          the same, per client uid (default: ${DEFAULT_CONTROL_LIMITS.perUid})
  --max-subscribers N     subscribers at once (default: ${DEFAULT_MAX_SUBSCRIBERS}); each may fall 4 MiB
                          behind before it is dropped, and all share one buffer of lines
  --no-watch              do not reload rules when a rules directory changes
  --rules-cache DIR       keep parsed YAML rule files in DIR between starts, each
                          parsed again when it changes (default: ${defaultCacheDir()};
                          'none' for none)
  --no-coldplug           do not record the devices present at start (nor the links'
                          carrier and addresses)
  --no-links              do not follow network links over NETLINK_ROUTE (no link-up,
                          link-down, address-add, address-remove events)
  --link-receive-buffer SIZE
                          route socket buffer (default: 16M); on overflow the links
                          and addresses are dumped again
  --receive-buffer SIZE   kernel socket buffer, e.g. 16M (default: 128M as udevd; as root
                          it is forced past net.core.rmem_max)
  --queue-size N          events held in memory before reading pauses (default: ${DEFAULT_QUEUE_CAPACITY})
  --max-events N          events handled at once; events of one device, its parents
                          and children always wait for each other (default: ${DEFAULT_MAX_EVENTS})
  --event-timeout DUR     time budget of one event with its programs (default: ${DEFAULT_EVENT_TIMEOUT_MS / 1000}s)
  --stop-timeout DUR      on SIGTERM, time to finish queued events before the rest are
                          recorded unprocessed and programs killed (default: ${DEFAULT_STOP_TIMEOUT_MS / 1000}s)
  --history-max-age SPAN  delete history older than this, e.g. 90d, 12w, 36h (default:
                          90d; 'none' keeps everything)
  --history-max-rows N    keep at most N events (default: none)
  --history-max-size SIZE keep the database under SIZE, e.g. 200M, 1G (default: 200M;
                          'none' for no limit). Retention runs a chunk at a time
                          between events, at start and every minute
  --no-broadcast          do not pass processed events on to libudev (netlink group 2)
                          and libudev-zero (group 4) listeners
${FORWARD_USAGE}
  --log-level LEVEL       fatal, error, warn, info, debug, trace or silent (default:
                          $HOTPLUGD_LOG_LEVEL, else info; 'hotplugd log-level' changes it live)
  --log-format FORMAT     json, pretty or auto (pretty on a terminal; default: auto)
  -h, --help              show this help

Signals: SIGTERM or SIGINT stop reading events, finish the queued ones (up to
--stop-timeout), record everything and exit 0. SIGHUP reloads the rules (kept
unchanged if the new ones have errors). Under systemd (Type=notify) it reports
READY=1, STATUS=, RELOADING=1, STOPPING=1 and watchdog pings.

Exit status: 0 after a signal or 'hotplugd exit', 1 on an internal error,
2 on a usage error, 3 when the rules have errors at start (each is printed as
file:line:column), 4 when a resource is unavailable (the kernel socket, the
database, the control socket, or another hotplugd holds the lock).`;

/** Errors about resources (exit 4) rather than bugs (exit 1). */
const RESOURCE_ERRORS = new Set(['ESOCKET', 'EDB', 'EDBVERSION', 'ELOCKED', 'ELOCK', 'ERUNNING', 'EACCES', 'EADDRINUSE']);

/** --udev-db DIR, or /run/udev with --udev; 'none' turns it off. */
function udevDbOption(udev: boolean, dir: string | undefined): { udevDb?: string } {
  const chosen = dir ?? (udev ? UDEV_RUNTIME_DIR : undefined);
  return chosen === undefined || chosen === 'none' ? {} : { udevDb: chosen };
}

export const daemonCommand: Command = {
  name: 'daemon',
  usage,
  async run(argv) {
    // The daemon's heap flag (--heap-growing-percent) is set by the entry point, launch.ts,
    // before the code is compiled.
    const values = parseCommandArgs('daemon', usage, argv, {
      db: { type: 'string' },
      'rules-dir': { type: 'string', multiple: true },
      udev: { type: 'boolean' },
      'udev-db': { type: 'string' },
      sysfs: { type: 'string' },
      dev: { type: 'string' },
      'dry-run': { type: 'boolean' },
      'max-programs': { type: 'string' },
      'program-timeout': { type: 'string' },
      modprobe: { type: 'string' },
      control: { type: 'string' },
      'no-watch': { type: 'boolean' },
      'rules-cache': { type: 'string' },
      'no-coldplug': { type: 'boolean' },
      'no-links': { type: 'boolean' },
      'link-receive-buffer': { type: 'string' },
      'receive-buffer': { type: 'string' },
      'queue-size': { type: 'string' },
      'max-events': { type: 'string' },
      'event-timeout': { type: 'string' },
      'stop-timeout': { type: 'string' },
      'control-group': { type: 'string' },
      'max-connections': { type: 'string' },
      'max-connections-per-uid': { type: 'string' },
      'max-subscribers': { type: 'string' },
      'no-broadcast': { type: 'boolean' },
      'history-max-age': { type: 'string' },
      'history-max-rows': { type: 'string' },
      'history-max-size': { type: 'string' },
      'log-level': { type: 'string' },
      'log-format': { type: 'string' },
      ...FORWARD_OPTIONS,
    });
    if (values === null) return 0;
    const level = values['log-level'] ?? process.env.HOTPLUGD_LOG_LEVEL ?? 'info';
    if (!isLogLevel(level)) throw new HotplugError('EUSAGE', `hotplugd daemon: --log-level expects one of fatal, error, warn, info, debug, trace, silent; got ${JSON.stringify(level)}`);
    const format = values['log-format'] ?? 'auto';
    if (format !== 'auto' && format !== 'json' && format !== 'pretty') {
      throw new HotplugError('EUSAGE', `hotplugd daemon: --log-format expects json, pretty or auto; got ${JSON.stringify(format)}`);
    }
    let controlGroup: number | undefined;
    if (values['control-group'] !== undefined) {
      controlGroup = loadAccounts().group(values['control-group'])?.id;
      if (controlGroup === undefined) throw new HotplugError('EUSAGE', `hotplugd daemon: --control-group: no group ${JSON.stringify(values['control-group'])} in /etc/group`);
    }
    const retention = parseRetention(values);
    const stopTimeoutMs = parseDuration('daemon', 'stop-timeout', values['stop-timeout']) ?? DEFAULT_STOP_TIMEOUT_MS;
    const logger = await createLogger(level, format);
    let requestStop: (reason: string) => void = () => {};
    let daemon: Daemon;
    try {
      daemon = new Daemon({
      dbPath: values.db ?? defaultDbPath(),
      rulesDirs: [...(values['rules-dir'] ?? DEFAULT_RULES_DIRS), ...(values.udev ? UDEV_RULES_DIRS : [])],
      ...udevDbOption(values.udev ?? false, values['udev-db']),
      sysfsRoot: values.sysfs ?? SYSFS_ROOT,
      coldplug: !values['no-coldplug'],
      logger,
      receiveBufferBytes: parseByteSize('daemon', 'receive-buffer', values['receive-buffer'], DEFAULT_RECEIVE_BUFFER_BYTES),
      links: !values['no-links'],
      linkReceiveBufferBytes: parseByteSize('daemon', 'link-receive-buffer', values['link-receive-buffer'], DEFAULT_ROUTE_RECEIVE_BUFFER_BYTES),
      queueCapacity: parsePositiveInt('daemon', 'queue-size', values['queue-size']),
      maxEvents: parsePositiveInt('daemon', 'max-events', values['max-events']),
      eventTimeoutMs: parseDuration('daemon', 'event-timeout', values['event-timeout']),
      controlGroup,
      maxSubscribers: parsePositiveInt('daemon', 'max-subscribers', values['max-subscribers']),
      controlLimits: {
        total: parsePositiveInt('daemon', 'max-connections', values['max-connections']),
        perUid: parsePositiveInt('daemon', 'max-connections-per-uid', values['max-connections-per-uid']),
      },
      broadcast: !values['no-broadcast'],
      retention,
      onExitRequest: () => requestStop('control'),
      controlPath: values.control ?? defaultControlPath(),
      watchRules: !values['no-watch'],
      rulesCacheDir: rulesCacheDirOption(values['rules-cache']),
      devRoot: values.dev ?? DEV_ROOT,
      dryRun: values['dry-run'] ?? false,
      maxPrograms: parsePositiveInt('daemon', 'max-programs', values['max-programs']),
      programTimeoutMs: parseDuration('daemon', 'program-timeout', values['program-timeout']),
      ...(values.modprobe ? { modprobe: values.modprobe } : {}),
      forward: forwardOptions(values),
      });
    } catch (error) {
      return startFailure(logger, error);
    }
    return await new Promise<number>((resolve) => {
      let stopping = false;
      const stop = (reason: string) => {
        if (stopping) return;
        stopping = true;
        logger.info({ reason }, 'Stopping');
        daemon.stopGracefully(stopTimeoutMs).then(
          () => resolve(0),
          (error: unknown) => {
            logger.fatal({ err: error }, `Failed to stop cleanly: ${(error as Error).message}`);
            daemon.stop();
            resolve(1);
          },
        );
      };
      requestStop = stop;
      // Not once: a Ctrl-C reaches every process of the terminal's group, and wrappers
      // (sudo, npm exec) may pass a signal on as well; a repeat must not kill a stop midway.
      process.on('SIGTERM', () => stop('SIGTERM'));
      process.on('SIGINT', () => stop('SIGINT'));
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
        resolve(startFailure(logger, error));
      });
    });
  },
};

function parseRetention(values: { 'history-max-age'?: string; 'history-max-rows'?: string; 'history-max-size'?: string }): RetentionLimits {
  const limit = <T>(option: string, text: string | undefined, fallback: T | undefined, parse: (text: string) => T | undefined, expected: string) => {
    if (text === undefined) return fallback;
    if (text === 'none') return undefined;
    const value = parse(text);
    if (value === undefined) throw new HotplugError('EUSAGE', `hotplugd daemon: --${option} expects ${expected} or none; got ${JSON.stringify(text)}`);
    return value;
  };
  return {
    maxAgeMs: limit('history-max-age', values['history-max-age'], DEFAULT_RETENTION.maxAgeMs, parseDurationMs, 'a span such as 90d or 36h'),
    maxRows: limit('history-max-rows', values['history-max-rows'], undefined, (t) => (/^\d+$/.test(t) && Number(t) > 0 ? Number(t) : undefined), 'a whole number above 0'),
    maxBytes: limit('history-max-size', values['history-max-size'], DEFAULT_RETENTION.maxBytes, parseSizeBytes, 'a size such as 200M'),
  };
}

function startFailure(logger: Logger, error: unknown): number {
  const code = (error as { code?: string }).code;
  if (code === 'EUSAGE') throw error;
  if (error instanceof HotplugError || (code !== undefined && RESOURCE_ERRORS.has(code))) {
    logger.fatal({ code }, (error as Error).message);
    return code !== undefined && RESOURCE_ERRORS.has(code) ? 4 : 1;
  }
  logger.fatal({ err: error }, `hotplugd failed to start: ${(error as Error).message}`);
  return 1;
}
