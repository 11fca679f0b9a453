import { HotplugError } from '../errors.js';
import { Sysfs } from '../uevent/sysfs.js';
import { TRIGGER_ACTIONS, triggerDevices, type TriggerAction } from '../uevent/trigger.js';
import { parseCommandArgs, type Command } from './args.js';

const usage = `Usage: hotplugd trigger [--action ACTION] [--subsystem-match S]... [--dry-run]

Ask the kernel to send events for devices present now, by writing ACTION to
their sysfs 'uevent' files (like 'udevadm trigger'). Prints each devpath.

Options:
  --action ACTION          ${TRIGGER_ACTIONS.join(', ')} (default: change)
  --subsystem-match S      only devices of subsystem S (a glob; repeatable)
  --dry-run                print the devices, write nothing
  --sysfs ROOT             sysfs root (default: /sys)
  -h, --help               show this help

Exit status: 0 when every write succeeded, 1 when any failed.`;

export const triggerCommand: Command = {
  name: 'trigger',
  summary: 'request events for present devices',
  usage,
  async run(argv) {
    const values = parseCommandArgs('trigger', usage, argv, {
      action: { type: 'string' },
      'subsystem-match': { type: 'string', multiple: true },
      'dry-run': { type: 'boolean' },
      sysfs: { type: 'string' },
    });
    if (values === null) return 0;
    const action = values.action ?? 'change';
    if (!(TRIGGER_ACTIONS as readonly string[]).includes(action)) {
      throw new HotplugError('EUSAGE', `hotplugd trigger: --action expects one of ${TRIGGER_ACTIONS.join(', ')}; got ${JSON.stringify(action)}`);
    }
    const results = triggerDevices(new Sysfs(values.sysfs ?? '/sys'), {
      action: action as TriggerAction,
      subsystems: values['subsystem-match'] ?? [],
      dryRun: values['dry-run'] ?? false,
    });
    let failed = 0;
    for (const result of results) {
      if (result.error === undefined) {
        process.stdout.write(`${result.devpath}\n`);
      } else {
        failed++;
        process.stderr.write(`hotplugd trigger: Failed to write ${action} to ${result.devpath}/uevent: ${result.error}\n`);
      }
    }
    return failed > 0 ? 1 : 0;
  },
};
