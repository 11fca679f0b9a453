// `hotplugd status`: what the running daemon is doing.
import { defaultControlPath, sendControlRequest } from '../daemon/control.js';
import { parseCommandArgs, type Command } from './args.js';

const usage = `Usage: hotplugd status [options]

Show the running daemon's uptime, event and action counters, its rule set and
its supervised jobs (with their restarts).

Options:
  --json           print the daemon's answer as one JSON object
  --control PATH   the daemon's control socket (default: ${defaultControlPath()})
  -h, --help       show this help`;

interface JobLine {
  devpath: string;
  argv: string[];
  pid: number | undefined;
  restarts: number;
  state: string;
}

export const statusCommand: Command = {
  name: 'status',
  summary: "show the running daemon's counters, rules and jobs",
  usage,
  async run(argv) {
    const values = parseCommandArgs('status', usage, argv, { control: { type: 'string' }, json: { type: 'boolean' } });
    if (values === null) return 0;
    const reply = await sendControlRequest(values.control ?? defaultControlPath(), { command: 'status' });
    if (!reply.ok) {
      console.error(`hotplugd status: ${reply.error}`);
      return 1;
    }
    if (values.json) {
      console.log(JSON.stringify(reply));
      return 0;
    }
    const counters = reply.counters as Record<string, unknown>;
    const rules = reply.rules as Record<string, number>;
    const jobs = reply.jobs as JobLine[];
    const lines = [
      `pid ${String(reply.pid)}, up ${Math.round((reply.uptimeMs as number) / 1000)} s`,
      `rules: ${rules.count} from ${rules.files} files (version ${rules.version}, ${rules.failedReloads} failed reloads)`,
      `events: ${String(counters.received)} received, ${String(counters.processed)} processed, ${String(counters.forged)} forged, ${String(counters.malformed)} malformed, ${String(counters.enobufs)} ENOBUFS`,
      `actions: ${String(counters.actionsFailed)} failed; programs ${String(counters.programsRunning)} running, ${String(counters.programsWaiting)} waiting`,
      `jobs: ${jobs.length}`,
      ...jobs.map((j) => `  ${j.state.padEnd(8)} pid ${j.pid ?? '-'}  restarts ${j.restarts}  ${j.devpath}  ${JSON.stringify(j.argv)}`),
    ];
    console.log(lines.join('\n'));
    return 0;
  },
};
