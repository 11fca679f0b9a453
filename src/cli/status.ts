import { defaultControlPath } from '../defaults.js';
// `hotplugd status`: what the running daemon is doing.
import { sendControlRequest } from '../control/protocol.js';
import type { RuleMetricsRow } from '../control/metrics.js';
import { parseCommandArgs, type Command } from './args.js';
import { printable } from './output.js';

const usage = `Usage: hotplugd status [options]

Show the running daemon's uptime, event and action counters, its rule set and
its supervised jobs (with their restarts).

Options:
  --rules          also each rule's figures: events matched, actions and failed
                   actions, action latency p50/p95
  --json           print the daemon's answer as one JSON object
  --control PATH   the daemon's control socket (default: ${defaultControlPath()})
  -h, --help       show this help`;

interface JobLine {
  devpath: string;
  argv: string[];
  pid: number | undefined;
  restarts: number;
  state: string;
  whileLinkUp?: boolean;
}

export const statusCommand: Command = {
  name: 'status',
  usage,
  async run(argv) {
    const values = parseCommandArgs('status', usage, argv, { control: { type: 'string' }, json: { type: 'boolean' }, rules: { type: 'boolean' } });
    if (values === null) return 0;
    const reply = await sendControlRequest(values.control ?? defaultControlPath(), { command: 'status', rules: values.rules ?? false });
    if (!reply.ok) {
      console.error(`hotplugd status: ${reply.error}`);
      return 1;
    }
    if (values.json) {
      console.log(JSON.stringify(reply));
      return 0;
    }
    const counters = reply.counters as Record<string, unknown>;
    const rules = reply.rules as Record<string, number> & { steppedAside?: string[] };
    const jobs = reply.jobs as JobLine[];
    const lines = [
      `pid ${String(reply.pid)}, up ${Math.round((reply.uptimeMs as number) / 1000)} s, log level ${String(reply.logLevel)}`,
      ...(reply.memory === undefined ? [] : [memoryLine(reply.memory as Record<string, number>)]),
      `rules: ${rules.count} from ${rules.files} files (version ${rules.version}, ${rules.failedReloads} failed reloads, last load: ${rules.loadErrors} errors, ${rules.loadWarnings} warnings)`,
      ...(rules.steppedAside?.length ? [`rules stepping aside for udev's: ${rules.steppedAside.join(', ')}`] : []),
      `events: ${String(counters.received)} received, ${String(counters.processed)} processed, ${String(counters.queued)} queued (${String(counters.running)} running), ${String(counters.forged)} forged, ${String(counters.malformed)} malformed, ${String(counters.enobufs)} ENOBUFS`,
      `links: ${String(counters.linksKnown)} interfaces followed, ${String(counters.linkChanges)} changes from ${String(counters.linkMessages)} route datagrams, ${String(counters.linkForged)} forged, ${String(counters.linkMalformed)} malformed, ${String(counters.linkEnobufs)} ENOBUFS (${String(counters.linkResyncs)} resyncs)`,
      ...(counters.forwardConnected === undefined ? [] : [`forwarding: ${counters.forwardConnected ? 'connected' : 'not connected'}, cursor at event ${String(counters.forwardCursor)}, ${String(counters.forwardBacklog)} events waiting for the collector, ${String(counters.forwardInFlight)} records in flight, ${String(counters.forwardSent)} records sent, ${String(counters.forwardResends)} resends${counters.forwardLastError ? `, last error: ${String(counters.forwardLastError)}` : ''}`]),
      `history: ${String(counters.eventsRecorded)} events recorded (${String(counters.historyRowsRecorded)} rows), ${String(counters.evaluationFailures)} not evaluated (sysfs unreadable)`,
      `subscribers: ${String(counters.subscribers)} (${String(counters.subscribersDropped)} dropped as too slow; ${String(counters.subscriberBytesHeld)} bytes held for them)`,
      `control: ${String(counters.controlConnections ?? 0)} connections open, ${String(counters.controlOverLimit ?? 0)} refused over the limits, ${String(counters.controlRefused)} refused peers, ${String(counters.controlMalformed)} malformed; udev control: ${String(counters.udevControlConnections ?? 0)} open, ${String(counters.udevControlMessages)} messages, ${String(counters.udevControlRefused)} refused, ${String(counters.udevControlTimedOut ?? 0)} closed silent, ${String(counters.udevControlEvicted ?? 0)} evicted at the limit`,
      `node watches: ${String(counters.nodesWatched)} (${String(counters.watchChanges)} changes synthesised, ${String(counters.watchPartitionRereads ?? 0)} partition tables re-read)`,
      `actions: ${String(counters.actionsFailed)} failed; programs ${String(counters.programsRunning)} running, ${String(counters.programsWaiting)} waiting; debounced rules ${String(counters.debounceWaiting ?? 0)} waiting, ${String(counters.debounceFired ?? 0)} acted, ${String(counters.debounceCancelled ?? 0)} cancelled`,
      `jobs: ${jobs.length}`,
      ...jobs.map((j) => `  ${j.state.padEnd(8)} pid ${j.pid ?? '-'}  restarts ${j.restarts}  ${j.devpath}  ${JSON.stringify(j.argv)}${j.whileLinkUp ? '  (while the link is up)' : ''}`),
    ];
    if (values.rules) lines.push(...ruleLines(reply.ruleMetrics as RuleMetricsRow[]));
    console.log(lines.map(printable).join('\n'));
    return 0;
  },
};

function ruleLines(rows: RuleMetricsRow[]): string[] {
  const ms = (value: number | null) => (value === null ? '-' : value.toFixed(1));
  const table = [['MATCHED', 'ACTIONS', 'FAILED', 'DEBOUNCED', 'CANCELLED', 'P50 MS', 'P95 MS', 'RULE'], ...rows.map((r) => [String(r.matched), String(r.actions), String(r.failed), String(r.debounced ?? 0), String(r.cancelled ?? 0), ms(r.p50Ms), ms(r.p95Ms), r.rule])];
  const widths = table[0]!.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
  return ['', `rules that matched since start: ${rows.length}`, ...table.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padStart(widths[i]!))).join('  '))];
}

function memoryLine(m: Record<string, number>): string {
  return `memory: ${m.rss} MiB resident; JavaScript heap ${m.heapUsed} of ${m.heapTotal} MiB, ${m.external} MiB outside it`;
}
