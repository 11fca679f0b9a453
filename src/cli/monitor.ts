import picomatch from 'picomatch';
import type { Uevent } from '../uevent/event.js';
import { KernelUeventSource } from '../uevent/source.js';
import { parseCommandArgs, type Command } from './args.js';

const usage = `Usage: hotplugd monitor [--json] [--subsystem S]...

Print kernel uevents as they arrive (like 'udevadm monitor --kernel --property').
Datagrams that did not come from the kernel are dropped and reported on stderr.

Options:
  --json           one JSON object per line instead of text blocks
  --subsystem S    only events of subsystem S (a glob; repeat for several)
  -h, --help       show this help`;

/** The text block udevadm prints: a header line, then the properties, then a blank line. */
export function formatEventText(event: Uevent): string {
  const seconds = (event.receivedAt / 1000).toFixed(6);
  const lines = [`KERNEL[${seconds}] ${event.action.padEnd(8)} ${event.devpath} (${event.subsystem})`];
  for (const [key, value] of Object.entries(event.properties)) lines.push(`${key}=${value}`);
  return `${lines.join('\n')}\n\n`;
}

export function formatEventJson(event: Uevent): string {
  return `${JSON.stringify({
    seqnum: event.seqnum ?? null,
    action: event.action,
    devpath: event.devpath,
    subsystem: event.subsystem,
    received_at: new Date(event.receivedAt).toISOString(),
    source: event.source,
    properties: event.properties,
  })}\n`;
}

export const monitorCommand: Command = {
  name: 'monitor',
  summary: 'print live kernel uevents',
  usage,
  async run(argv) {
    const values = parseCommandArgs('monitor', usage, argv, {
      json: { type: 'boolean' },
      subsystem: { type: 'string', multiple: true },
    });
    if (values === null) return 0;
    const matches = values.subsystem?.length ? picomatch(values.subsystem) : () => true;
    const format = values.json ? formatEventJson : formatEventText;
    let stdoutBlocked = false;
    const source = new KernelUeventSource({
      onEvent(event) {
        // A reader that cannot keep up loses lines, not our memory.
        if (!matches(event.subsystem) || stdoutBlocked) return;
        stdoutBlocked = !process.stdout.write(format(event));
      },
      onReject(rejection) {
        process.stderr.write(`hotplugd monitor: dropped a datagram (${rejection.reason}): ${rejection.detail}\n`);
      },
      onOverflow(reports) {
        process.stderr.write(`hotplugd monitor: the kernel dropped events (ENOBUFS x${reports}): the receive buffer is full\n`);
      },
    });
    process.stdout.on('drain', () => (stdoutBlocked = false));
    if (!values.json) process.stderr.write('monitor will print the received events for:\nKERNEL - the kernel uevent\n\n');
    source.resume();
    return await new Promise<number>((resolve) => {
      const stop = () => {
        source.close();
        resolve(0);
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      process.stdout.once('error', stop);
    });
  },
};
