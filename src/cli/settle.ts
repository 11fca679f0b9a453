import { defaultControlPath } from '../defaults.js';
// `hotplugd settle` and `hotplugd wait`: block until the daemon has done its work,
// for boot scripts and tests that today sleep or poll.
import { sendControlRequest } from '../control/protocol.js';
import { parseCommandArgs, parseCommandLine, parseDuration, usageError, type Command } from './args.js';

const DEFAULT_TIMEOUT_MS = 120_000;
// The reply may take the whole timeout; allow for the round trip on top.
const REPLY_SLACK_MS = 5_000;

const settleUsage = `Usage: hotplugd settle [--timeout DUR] [--control PATH]

Wait until every event the kernel has sent so far has been processed: rules
evaluated, links and permissions applied, programs finished (like 'udevadm settle').

Options:
  --timeout DUR    give up after DUR, e.g. 30s or 2m (default: 120s)
  --control PATH   the daemon's control socket (default: ${defaultControlPath()})
  -h, --help       show this help

Exit status: 0 when settled, 1 when events were still queued at the timeout or the
daemon could not be reached.`;

export const settleCommand: Command = {
  name: 'settle',
  usage: settleUsage,
  async run(argv) {
    const values = parseCommandArgs('settle', settleUsage, argv, { timeout: { type: 'string' }, control: { type: 'string' } });
    if (values === null) return 0;
    const timeoutMs = parseDuration('settle', 'timeout', values.timeout) ?? DEFAULT_TIMEOUT_MS;
    const reply = await sendControlRequest(values.control ?? defaultControlPath(), { command: 'settle', timeoutMs }, timeoutMs + REPLY_SLACK_MS);
    if (!reply.ok) {
      console.error(`hotplugd settle: ${reply.error}`);
      return 1;
    }
    return 0;
  },
};

const waitUsage = `Usage: hotplugd wait (/dev/PATH | /sys/PATH | DEVPATH) [--removed] [--timeout DUR]

Wait until the device exists and every event for it has been processed, so its
node, links and permissions are in place (or, with --removed, until it is gone).
A /dev path may be a link a rule creates: the wait ends once it exists.

Options:
  --removed        wait for the device to be removed instead
  --timeout DUR    give up after DUR (default: 120s)
  --control PATH   the daemon's control socket (default: ${defaultControlPath()})
  -h, --help       show this help

Exit status: 0 when the device is there (or gone), 1 at the timeout or when the
daemon could not be reached, 2 on a usage error.`;

export const waitCommand: Command = {
  name: 'wait',
  usage: waitUsage,
  async run(argv) {
    const parsed = parseCommandLine('wait', waitUsage, argv, {
      removed: { type: 'boolean' },
      timeout: { type: 'string' },
      control: { type: 'string' },
    });
    if (parsed === null) return 0;
    const { values, positionals } = parsed;
    const [path, ...extra] = positionals;
    if (path === undefined || extra.length > 0) throw usageError('wait', 'expects exactly one device: /dev/PATH, /sys/PATH or a devpath');
    if (!/^\/(dev|sys|devices)\//.test(path)) throw usageError('wait', `expects /dev/PATH, /sys/PATH or a devpath (/devices/...); got ${JSON.stringify(path)}`);
    const timeoutMs = parseDuration('wait', 'timeout', values.timeout) ?? DEFAULT_TIMEOUT_MS;
    const reply = await sendControlRequest(
      values.control ?? defaultControlPath(),
      { command: 'wait', path, removed: values.removed ?? false, timeoutMs },
      timeoutMs + REPLY_SLACK_MS,
    );
    if (!reply.ok) {
      console.error(`hotplugd wait: ${reply.error}`);
      return 1;
    }
    return 0;
  },
};
