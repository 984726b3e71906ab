#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { z } from 'zod';
import { budgetCommand } from './budget.js';
import { runChat } from './chat.js';
import { doctorCommand } from './doctor.js';
import { groupsCommand } from './groups.js';
import { statusCommand, traceCommand } from './insight.js';
import { logsCommand } from './logs.js';
import { memoryCommand } from './memory.js';
import { serviceCommand } from './service.js';
import { runStart } from './start.js';
import { tasksCommand } from './tasks.js';
import { usageCommand } from './usage.js';
import { webCommand } from './web.js';
import { whatsappCommand } from './whatsapp.js';

/** The version in package.json (two folders up, from src/cli and from dist/cli alike). */
function packageVersion(): string {
  const manifest = new URL('../../package.json', import.meta.url);
  return z.object({ version: z.string() }).parse(JSON.parse(readFileSync(manifest, 'utf8'))).version;
}

/**
 * commander answers a command given without its subcommand (`pincer`, `pincer groups`) with that command's help
 * as an error: on stderr, exit 1. Asking what a command can do is no mistake, so help goes to stdout and exits
 * 0; errors (an unknown command, with the nearest one suggested) stay on stderr with their exit code.
 */
function helpIsNoError(command: Command): void {
  command
    .configureOutput({
      writeErr: (text) => process.stdout.write(text),
      outputError: (text) => process.stderr.write(text),
    })
    .exitOverride((err) => process.exit(err.code === 'commander.help' ? 0 : err.exitCode));
  for (const sub of command.commands) helpIsNoError(sub);
}

const program = new Command('pincer')
  .description('A personal AI assistant: one sandboxed Claude agent per conversation.')
  .version(packageVersion(), '-V, --version', 'print the version')
  .showSuggestionAfterError();

program
  .command('start')
  .description('run the assistant (local API, channels, agents)')
  .action(async () => {
    await runStart();
  });

program
  .command('chat')
  .argument('[name]', 'local chat to talk in', 'main')
  .description('talk to the running assistant from this terminal')
  .action(async (name: string) => {
    // Retry timers and requests still in flight would hold the process after /quit.
    process.exit(await runChat(name));
  });

program.addCommand(doctorCommand());

program.addCommand(groupsCommand());
program.addCommand(tasksCommand());
program.addCommand(memoryCommand());
program.addCommand(traceCommand());
program.addCommand(statusCommand());
program.addCommand(usageCommand());
program.addCommand(budgetCommand());
program.addCommand(webCommand());
program.addCommand(whatsappCommand());
program.addCommand(serviceCommand());
program.addCommand(logsCommand());
helpIsNoError(program);

await program.parseAsync();
