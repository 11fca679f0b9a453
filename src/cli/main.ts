#!/usr/bin/env node
// hotplugd's command line: one subcommand per file.
import { HotplugError } from '../errors.js';
import type { Command } from './args.js';
import { daemonCommand } from './daemon.js';
import { historyCommand } from './history.js';
import { monitorCommand } from './monitor.js';
import { reloadCommand } from './reload.js';
import { rulesCommand } from './rules.js';
import { statusCommand } from './status.js';
import { testCommand } from './test.js';
import { triggerCommand } from './trigger.js';
import { settleCommand, waitCommand } from './settle.js';
import { exitCommand, logLevelCommand } from './admin.js';
import { infoCommand } from './info.js';
import { sessionsCommand } from './sessions.js';

const COMMANDS: readonly Command[] = [
  daemonCommand, monitorCommand, historyCommand, infoCommand, sessionsCommand, triggerCommand, settleCommand, waitCommand, testCommand, rulesCommand,
  statusCommand, reloadCommand, logLevelCommand, exitCommand,
];

function usage(): string {
  const lines = COMMANDS.map((c) => `  ${c.name.padEnd(10)} ${c.summary}`);
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
  return command.run(rest);
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
