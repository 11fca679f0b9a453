#!/usr/bin/env node
// hotplugd's command line: one subcommand per file.
import { HotplugError } from '../errors.js';
import type { Command } from './args.js';

// Each command's module is loaded only when it runs: the daemon's start-up then pays
// for the daemon alone, not for every client command's dependencies.
const COMMANDS: readonly { name: string; summary: string; load: () => Promise<Command> }[] = [
  { name: 'daemon', summary: 'run the hotplug daemon', load: async () => (await import('./daemon.js')).daemonCommand },
  { name: 'monitor', summary: 'print live kernel uevents', load: async () => (await import('./monitor.js')).monitorCommand },
  { name: 'history', summary: 'list recorded device events, filtered', load: async () => (await import('./history.js')).historyCommand },
  { name: 'info', summary: 'a device: properties, links, tags and recent timeline', load: async () => (await import('./info.js')).infoCommand },
  { name: 'sessions', summary: 'plug-in sessions per physical device', load: async () => (await import('./sessions.js')).sessionsCommand },
  { name: 'trigger', summary: 'request events for present devices', load: async () => (await import('./trigger.js')).triggerCommand },
  { name: 'settle', summary: 'wait until the queued events are processed', load: async () => (await import('./settle.js')).settleCommand },
  { name: 'wait', summary: 'wait until a device is present and processed (or removed)', load: async () => (await import('./settle.js')).waitCommand },
  { name: 'test', summary: 'dry-run the rules for a device and show the plan', load: async () => (await import('./test.js')).testCommand },
  { name: 'rules', summary: 'check rule files (rules check)', load: async () => (await import('./rules.js')).rulesCommand },
  { name: 'status', summary: "show the running daemon's counters, rules and jobs", load: async () => (await import('./status.js')).statusCommand },
  { name: 'reload', summary: 'make the running daemon reload its rules', load: async () => (await import('./reload.js')).reloadCommand },
  { name: 'log-level', summary: "change the running daemon's log level", load: async () => (await import('./admin.js')).logLevelCommand },
  { name: 'collect', summary: "collect boards' forwarded histories into one database", load: async () => (await import('./collect.js')).collectCommand },
  { name: 'boards', summary: 'the boards of a collected fleet database', load: async () => (await import('./collect.js')).boardsCommand },
  { name: 'broker-setup', summary: 'certificates and an ACL so boards cannot speak for each other', load: async () => (await import('./broker-setup.js')).brokerSetupCommand },
  { name: 'serve', summary: 'the history as a web page and a JSON API (read-only)', load: async () => (await import('./serve.js')).serveCommand },
  { name: 'exit', summary: 'stop the running daemon', load: async () => (await import('./admin.js')).exitCommand },
];

function usage(): string {
  const lines = COMMANDS.map((c) => `  ${c.name.padEnd(12)} ${c.summary}`);
  return `Usage: hotplugd COMMAND [options]

A device hotplug manager for Linux: receives kernel uevents, records them in a
device history, and (with rules) acts on them.

Commands:
${lines.join('\n')}

Run 'hotplugd COMMAND --help' for a command's options.`;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    console.log(usage());
    return name === undefined ? 2 : 0;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (!command) {
    console.error(`hotplugd: unknown command ${JSON.stringify(name)}\n\n${usage()}`);
    return 2;
  }
  return (await command.load()).run(rest);
}

// A reader that went away (`hotplugd history | head`) is a normal end, not an error.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(0);
  throw error;
});

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    if (error instanceof HotplugError) {
      console.error(error.message);
      process.exitCode = error.code === 'EUSAGE' ? 2 : 1;
    } else {
      console.error(error);
      process.exitCode = 1;
    }
  },
);
