#!/usr/bin/env node
// Storm benchmark: N synthetic kernel events (`change` written to lo's uevent file in a
// fresh network namespace) through the real daemon, from the first write to the last
// row committed in the history. Prints a Markdown table and writes JSON to bench/results/.
// Usage: npm run bench [-- --events N] [-- --runs R]   (root: needs a network namespace)
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';

const { values } = parseArgs({ options: { events: { type: 'string', default: '100000' }, runs: { type: 'string', default: '3' } } });
const EVENTS = Number(values.events);
const RUNS = Number(values.runs);
const CLI = new URL('../dist/cli/main.js', import.meta.url).pathname;
const LO = '/devices/virtual/net/lo';
const CLOCK_TICKS = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }));

if (process.getuid() !== 0) {
  console.error('bench: needs root (network namespaces)');
  process.exit(1);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function cpuSeconds(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS; // utime + stime
}

function peakRssMiB(pid) {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmHWM:'));
  return Number(line.split(/\s+/)[1]) / 1024;
}

function recorded(dbPath) {
  try {
    const db = new Database(dbPath, { readonly: true, fileMustExist: true });
    try {
      return db.prepare("SELECT count(*) AS n FROM events WHERE devpath = ? AND action = 'change'").get(LO).n;
    } finally {
      db.close();
    }
  } catch {
    return 0;
  }
}

async function stormOnce(run) {
  const netns = `hpd-bench-${process.pid}-${run}`;
  const dir = mkdtempSync(join(tmpdir(), 'hotplugd-bench-'));
  const dbPath = join(dir, 'history.db');
  execFileSync('ip', ['netns', 'add', netns]);
  let daemon;
  try {
    const logs = [];
    daemon = spawn('ip', ['netns', 'exec', netns, process.execPath, CLI, 'daemon', '--db', dbPath, '--no-coldplug', '--log-format', 'json', ...(process.env.STORM_DAEMON_ARGS ?? '').split(' ').filter(Boolean)], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    daemon.stderr.setEncoding('utf8').on('data', (chunk) => logs.push(...chunk.split('\n').filter(Boolean)));
    while (!logs.some((l) => l.includes('"hotplugd started"'))) {
      if (daemon.exitCode !== null) throw new Error(`daemon exited: ${logs.join('\n')}`);
      await sleep(20);
    }
    const cpuBefore = cpuSeconds(daemon.pid);
    const started = process.hrtime.bigint();
    // One writer process: the kernel sends one uevent per write.
    execFileSync('ip', ['netns', 'exec', netns, process.execPath, '-e',
      `const fs=require('fs');for(let i=0;i<${EVENTS};i++)fs.writeFileSync('/sys/class/net/lo/uevent','change')`]);
    const written = process.hrtime.bigint();
    const deadline = Date.now() + 300_000;
    let count = 0;
    while ((count = recorded(dbPath)) < EVENTS && Date.now() < deadline) await sleep(10);
    const done = process.hrtime.bigint();
    const cpu = cpuSeconds(daemon.pid) - cpuBefore;
    const rss = peakRssMiB(daemon.pid);
    daemon.kill('SIGTERM');
    await new Promise((resolve) => daemon.once('exit', resolve));
    const stopped = JSON.parse(logs.find((l) => l.includes('"hotplugd stopped"')) ?? '{}');
    const seconds = Number(done - started) / 1e9;
    return {
      events: EVENTS,
      recorded: recorded(dbPath),
      lost: EVENTS - recorded(dbPath),
      enobufs: stopped.counters?.enobufs ?? null,
      seconds,
      eventsPerSecond: Math.round(EVENTS / seconds),
      kernelWriteSeconds: Number(written - started) / 1e9,
      cpuSeconds: cpu,
      peakRssMiB: Math.round(rss * 10) / 10,
    };
  } finally {
    if (daemon && daemon.exitCode === null) daemon.kill('SIGKILL');
    execFileSync('ip', ['netns', 'delete', netns]);
    rmSync(dir, { recursive: true, force: true });
  }
}

const results = [];
for (let run = 1; run <= RUNS; run++) {
  const result = await stormOnce(run);
  results.push(result);
  console.error(`run ${run}/${RUNS}: ${result.eventsPerSecond} events/s, lost ${result.lost}, ENOBUFS ${result.enobufs}`);
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const rows = results.map((r, i) =>
  `| ${i + 1} | ${r.events} | ${r.eventsPerSecond} | ${r.seconds.toFixed(3)} | ${r.kernelWriteSeconds.toFixed(3)} | ${r.cpuSeconds.toFixed(2)} | ${r.peakRssMiB} | ${r.enobufs} | ${r.lost} |`);
console.log(`## Storm: ${EVENTS} synthetic kernel events, end to end (received, parsed, queued, committed to SQLite)

| run | events | events/s | seconds | kernel write s | daemon CPU s | peak RSS MiB | ENOBUFS | lost |
|---|---|---|---|---|---|---|---|---|
${rows.join('\n')}

Median: ${median(results.map((r) => r.eventsPerSecond))} events/s; lost in all runs: ${results.reduce((n, r) => n + r.lost, 0)}.`);

const outDir = new URL('./results/', import.meta.url).pathname;
mkdirSync(outDir, { recursive: true });
writeFileSync(join(outDir, 'storm.json'), `${JSON.stringify({ at: new Date().toISOString(), node: process.version, results }, null, 2)}\n`);
if (results.some((r) => r.lost !== 0)) process.exitCode = 1;
