import { defaultControlPath, SYSFS_ROOT } from '../defaults.js';
import { randomUUID } from 'node:crypto';
import { streamControlRequest } from '../control/protocol.js';
import { HotplugError } from '../errors.js';
import type { ProcessedRecord } from '../history/records.js';
import { Sysfs } from '../uevent/sysfs.js';
import { TRIGGER_ACTIONS, triggerDevices, type TriggerAction } from '../uevent/trigger.js';
import { parseCommandArgs, parseDuration, type Command } from './args.js';

const usage = `Usage: hotplugd trigger [--action ACTION] [--subsystem-match S]... [--settle] [--dry-run]

Ask the kernel to send events for devices present now, by writing ACTION to
their sysfs 'uevent' files (like 'udevadm trigger'). Prints each devpath.

Options:
  --action ACTION          ${TRIGGER_ACTIONS.join(', ')} (default: change)
  --subsystem-match S      only devices of subsystem S (a glob; repeatable)
  --settle                 wait until the daemon has processed the events this
                           trigger caused (tagged with a UUID the kernel echoes
                           back as SYNTH_UUID), not other events
  --timeout DUR            with --settle, give up after DUR (default: 120s)
  --control PATH           the daemon's control socket (default: ${defaultControlPath()})
  --dry-run                print the devices, write nothing
  --sysfs ROOT             sysfs root (default: /sys)
  -h, --help               show this help

Exit status: 0 when every write succeeded (and, with --settle, every event was
processed), 1 when any failed or the timeout passed.`;

/** Subscribes, then runs `trigger`; resolves with the devpaths whose tagged events were not processed in time. */
async function triggerAndSettle(controlPath: string, uuid: string, timeoutMs: number, trigger: () => string[]): Promise<string[]> {
  let waiting: Set<string> | undefined;
  const early: string[] = [];
  let resolveDone: () => void = () => {};
  const allDone = new Promise<void>((resolve) => (resolveDone = resolve));
  let first = true;
  let refused: string | undefined;
  const stream = streamControlRequest(controlPath, { command: 'subscribe' }, (line) => {
    if (first) {
      first = false;
      const reply = JSON.parse(line) as { ok: boolean; error?: string };
      if (!reply.ok) {
        refused = reply.error;
        resolveDone();
        return;
      }
      // Subscribed before writing: none of our events can be missed.
      waiting = new Set(trigger());
      for (const devpath of early) waiting.delete(devpath);
      if (waiting.size === 0) resolveDone();
      return;
    }
    const record = JSON.parse(line) as ProcessedRecord;
    if (record.properties.SYNTH_UUID !== uuid) return;
    if (!waiting) early.push(record.devpath);
    else if (waiting.delete(record.devpath) && waiting.size === 0) resolveDone();
  });
  const timer = setTimeout(resolveDone, timeoutMs);
  await Promise.race([allDone, stream.done.then(() => {
    if (waiting === undefined || waiting.size > 0) throw new HotplugError('ECONTROL', 'hotplugd trigger: the daemon closed the connection before the events were processed');
  })]);
  clearTimeout(timer);
  stream.close();
  if (refused !== undefined) throw new HotplugError('ECONTROL', `hotplugd trigger: ${refused}`);
  return [...(waiting ?? [])];
}

export const triggerCommand: Command = {
  name: 'trigger',
  usage,
  async run(argv) {
    const values = parseCommandArgs('trigger', usage, argv, {
      action: { type: 'string' },
      'subsystem-match': { type: 'string', multiple: true },
      'dry-run': { type: 'boolean' },
      sysfs: { type: 'string' },
      settle: { type: 'boolean' },
      timeout: { type: 'string' },
      control: { type: 'string' },
    });
    if (values === null) return 0;
    const action = values.action ?? 'change';
    if (!(TRIGGER_ACTIONS as readonly string[]).includes(action)) {
      throw new HotplugError('EUSAGE', `hotplugd trigger: --action expects one of ${TRIGGER_ACTIONS.join(', ')}; got ${JSON.stringify(action)}`);
    }
    const settle = (values.settle ?? false) && !values['dry-run'];
    const uuid = settle ? randomUUID() : undefined;
    let failed = 0;
    const trigger = () => {
      const results = triggerDevices(new Sysfs(values.sysfs ?? SYSFS_ROOT), {
        action: action as TriggerAction,
        subsystems: values['subsystem-match'] ?? [],
        dryRun: values['dry-run'] ?? false,
        ...(uuid ? { uuid } : {}),
      });
      const written: string[] = [];
      for (const result of results) {
        if (result.error === undefined) {
          process.stdout.write(`${result.devpath}\n`);
          written.push(result.devpath);
        } else {
          failed++;
          process.stderr.write(`hotplugd trigger: Failed to write ${action} to ${result.devpath}/uevent: ${result.error}\n`);
        }
      }
      return written;
    };
    if (!settle || !uuid) {
      trigger();
      return failed > 0 ? 1 : 0;
    }
    const timeoutMs = parseDuration('trigger', 'timeout', values.timeout) ?? 120_000;
    const missing = await triggerAndSettle(values.control ?? defaultControlPath(), uuid, timeoutMs, trigger);
    if (missing.length > 0) {
      process.stderr.write(`hotplugd trigger: ${missing.length} triggered events not processed within ${timeoutMs} ms (the kernel may have sent them to another network namespace): ${missing.slice(0, 10).join(', ')}${missing.length > 10 ? ', ...' : ''}\n`);
      return 1;
    }
    return failed > 0 ? 1 : 0;
  },
};
