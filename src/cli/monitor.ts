import { defaultControlPath } from '../defaults.js';
import { fnmatchAny } from '../text/fnmatch.js';
import { printable } from './output.js';
import { streamControlRequest } from '../control/protocol.js';
import type { IncidentLine, ProcessedRecord } from '../history/records.js';
import type { Uevent } from '../uevent/event.js';
import { KernelUeventSource } from '../uevent/source.js';
import { parseCommandArgs, type Command } from './args.js';

const usage = `Usage: hotplugd monitor [--processed [--cursor C]] [--json] [--subsystem S]...

Print kernel uevents as they arrive (like 'udevadm monitor --kernel --property').
Datagrams that did not come from the kernel are dropped and reported on stderr.

With --processed, print the events the running daemon has processed instead,
with the properties, links and tags its rules set and the rules that matched
(like 'udevadm monitor --udev --property'), and incidents as they are recorded
(kernel events lost and the resync after them, SEQNUM gaps, a replaced
database): INCIDENT lines, or {"incident": {...}} objects with --json.

Options:
  --processed      events processed by the daemon (through its control socket)
  --cursor C       with --processed: first replay the history after C (a history
                   id, an ISO 8601 time, or a duration ago such as 10m), then go live
                   with no gap and no duplicate
  --action A       with --processed: only action A (repeatable)
  --tag T          with --processed: only devices with tag T (repeatable)
  --json           one JSON object per line instead of text blocks
  --subsystem S    only events of subsystem S (a glob; repeat for several)
  --control PATH   the daemon's control socket (default: ${defaultControlPath()})
  -h, --help       show this help`;

/** The block udevadm prints for a processed event. */
export function formatProcessedText(record: ProcessedRecord): string {
  const seconds = (Date.parse(record.received_at) / 1000).toFixed(6);
  const lines = [`UDEV  [${seconds}] ${record.action.padEnd(8)} ${record.devpath} (${record.subsystem})`];
  for (const [key, value] of Object.entries(record.properties)) lines.push(`${key}=${value}`);
  if (record.rules.length > 0) lines.push(`# rules: ${record.rules.join(', ')}`);
  return `${lines.map(printable).join('\n')}\n\n`;
}

/** An incident as it happens: one line, marked so it cannot be taken for an event. */
export function formatIncidentText({ incident }: IncidentLine): string {
  const seconds = (Date.parse(incident.at) / 1000).toFixed(6);
  return `${printable(`INCIDENT [${seconds}] ${incident.kind} ${JSON.stringify(incident.detail)}`)}\n\n`;
}

async function monitorProcessed(values: { json?: boolean; subsystem?: string[]; action?: string[]; tag?: string[]; cursor?: string; control?: string }): Promise<number> {
  const cursor = values.cursor === undefined ? undefined : /^\d+$/.test(values.cursor) ? Number(values.cursor) : values.cursor;
  let failed: string | undefined;
  let first = true;
  const stream = streamControlRequest(
    values.control ?? defaultControlPath(),
    { command: 'subscribe', subsystems: values.subsystem, actions: values.action, tags: values.tag, cursor, incidents: true },
    (line) => {
      if (first) {
        first = false;
        const reply = JSON.parse(line) as { ok: boolean; error?: string };
        if (!reply.ok) failed = reply.error;
        else if (!values.json) process.stderr.write('monitor will print the events hotplugd processed:\nUDEV - the event after hotplugd\'s rules\n\n');
        return;
      }
      if (values.json) return void process.stdout.write(`${line}\n`);
      const message = JSON.parse(line) as ProcessedRecord | IncidentLine;
      process.stdout.write('incident' in message ? formatIncidentText(message) : formatProcessedText(message));
    },
  );
  const stop = () => stream.close();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  await stream.done;
  if (failed !== undefined) {
    console.error(`hotplugd monitor: ${failed}`);
    return 1;
  }
  return 0;
}

/** The text block udevadm prints: a header line, then the properties, then a blank line. */
export function formatEventText(event: Uevent): string {
  const seconds = (event.receivedAt / 1000).toFixed(6);
  const lines = [`KERNEL[${seconds}] ${event.action.padEnd(8)} ${event.devpath} (${event.subsystem})`];
  for (const [key, value] of Object.entries(event.properties)) lines.push(`${key}=${value}`);
  return `${lines.map(printable).join('\n')}\n\n`;
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
  usage,
  async run(argv) {
    const values = parseCommandArgs('monitor', usage, argv, {
      json: { type: 'boolean' },
      subsystem: { type: 'string', multiple: true },
      processed: { type: 'boolean' },
      cursor: { type: 'string' },
      action: { type: 'string', multiple: true },
      tag: { type: 'string', multiple: true },
      control: { type: 'string' },
    });
    if (values === null) return 0;
    if (values.processed) return monitorProcessed(values);
    const matches = values.subsystem?.length ? fnmatchAny(values.subsystem) : () => true;
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
