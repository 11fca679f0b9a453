#!/usr/bin/env node
// Coldplug: every device of this machine processed once. hotplugd: from exec to
// "settled" (a settle request on its control socket answered), so its start-up is
// included. systemd-udevd, already running: `udevadm trigger --action=add && udevadm
// settle`. Each daemon works on a private copy of /dev; hotplugd alternates with udevd.
// With --cli NAME=PATH (repeated), hotplugd builds are compared, taking turns with udevd.
// Usage: node bench/coldplug.js [--rounds 3] [--cli before=OLD/dist/cli/main.js --cli after=dist/cli/main.js]
import { parseArgs } from 'node:util';
import { sendControlRequest } from '../dist/control/protocol.js';
import { copyOfDev, startUdevd } from './lib/daemons.js';
import { CLI, lines, median, monotonicNs, requireRoot, round, sleep, withScope } from './lib/system.js';
import { join } from 'node:path';
import { printAndSave } from './lib/report.js';

async function hotplugdColdplug(cli = CLI, name = 'hotplugd') {
  return withScope('coldplug-hotplugd', async (scope) => {
    const dev = copyOfDev(scope);
    const controlPath = join(scope.dir, 'control.sock');
    const started = monotonicNs();
    const child = scope.spawn(process.execPath, [cli, 'daemon', '--db', join(scope.dir, 'history.db'), '--control', controlPath, '--dev', dev, '--log-format', 'json']);
    const log = lines(child, child.stderr);
    child.stdout.resume();
    for (;;) {
      try {
        const reply = await sendControlRequest(controlPath, { command: 'settle', timeoutMs: 120_000 }, 125_000);
        if (!reply.ok) throw new Error(`settle: ${reply.error}`);
        break;
      } catch (error) {
        if (!['ENOENT', 'ECONNREFUSED'].includes(error.cause?.code ?? error.code)) throw error;
        if (child.exitCode !== null) throw new Error(`hotplugd exited: ${log.seen.join('\n')}`);
        await sleep(1);
      }
    }
    const seconds = Number(monotonicNs() - started) / 1e9;
    const finished = JSON.parse(await log.waitFor((l) => l.includes('"Coldplug finished"'), 5000, 'the coldplug line'));
    child.kill('SIGTERM');
    return { daemon: name, devices: finished.coldplugged, seconds: round(seconds, 3), coldplugOnlySeconds: finished.durationMs / 1000 };
  });
}

async function udevdColdplug() {
  return withScope('coldplug-udevd', async (scope) => {
    const udevd = await startUdevd(scope);
    const devices = udevd.udevadm('trigger', '--action=add', '--dry-run', '--verbose').split('\n').filter(Boolean).length;
    const started = monotonicNs();
    udevd.udevadm('trigger', '--action=add');
    udevd.udevadm('settle', '--timeout=600');
    const seconds = Number(monotonicNs() - started) / 1e9;
    await udevd.stop();
    return { daemon: 'udevd', devices, seconds: round(seconds, 3) };
  });
}

export async function runColdplug(rounds, log = console.error, clis = [['hotplugd', CLI]]) {
  const runs = [];
  for (let r = 1; r <= rounds; r++) {
    for (const measure of [...clis.map(([name, cli]) => () => hotplugdColdplug(cli, name)), udevdColdplug]) {
      const result = await measure();
      log(`coldplug ${result.daemon} round ${r}: ${result.devices} devices in ${result.seconds} s`);
      runs.push({ round: r, ...result });
    }
  }
  const med = (kind) => median(runs.filter((r) => r.daemon === kind).map((r) => r.seconds));
  const last = clis.at(-1)[0];
  const ratio = round(med('udevd') / med(last));
  const coldplugOnly = median(runs.filter((r) => r.daemon === last).map((r) => r.coldplugOnlySeconds));
  const builds = clis.length > 1 ? `\n\nBuilds, medians of coldplug alone: ${clis.map(([n]) => `${n} ${median(runs.filter((r) => r.daemon === n).map((r) => r.coldplugOnlySeconds))} s`).join(', ')}.` : '';
  const markdown = `## Coldplug: every device of this machine

| round | daemon | devices | seconds | hotplugd: coldplug alone, s |
|---:|---|---:|---:|---:|
${runs.map((r) => `| ${r.round} | ${r.daemon} | ${r.devices} | ${r.seconds} | ${r.coldplugOnlySeconds ?? ''} |`).join('\n')}

Median: ${last} ${med(last)} s from exec to settled (start-up included), udevd ${med('udevd')} s
for trigger + settle: a ratio of ${ratio}. hotplugd's coldplug alone (walk, rules, history; its own
measure, from READY to processed) took ${coldplugOnly} s: ${round(med('udevd') / coldplugOnly)}× udevd's. hotplugd reads sysfs itself at start; udevd asks the
kernel for an \`add\` event per device and runs its rules in worker processes.${builds}`;
  return { markdown, json: { runs, hotplugdSeconds: med(last), hotplugdColdplugOnlySeconds: coldplugOnly, udevdSeconds: med('udevd'), ratio, coldplugOnlyRatio: round(med('udevd') / coldplugOnly) } };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  requireRoot();
  const { values } = parseArgs({ options: { rounds: { type: 'string', default: '3' }, cli: { type: 'string', multiple: true } } });
  const clis = values.cli?.map((c) => [c.slice(0, c.indexOf('=')), c.slice(c.indexOf('=') + 1)]);
  printAndSave('coldplug', await runColdplug(Number(values.rounds), console.error, clis?.length ? clis : undefined));
}
