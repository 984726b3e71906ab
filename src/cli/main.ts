#!/usr/bin/env node
import { Command } from 'commander';
import { budgetCommand } from './budget.js';
import { runChat } from './chat.js';
import { doctorCommand } from './doctor.js';
import { groupsCommand } from './groups.js';
import { statusCommand, traceCommand } from './insight.js';
import { logsCommand } from './logs.js';
import { serviceCommand } from './service.js';
import { runStart } from './start.js';
import { tasksCommand } from './tasks.js';
import { webCommand } from './web.js';
import { whatsappCommand } from './whatsapp.js';

const program = new Command('pincer').description('A personal AI assistant: one sandboxed Claude agent per conversation.');

program
  .command('start', { isDefault: true })
  .description('run the assistant (local API, channels, agents)')
  .action(async () => {
    await runStart();
  });

program
  .command('chat')
  .argument('[name]', 'local chat to talk in', 'main')
  .description('talk to the running assistant from this terminal')
  .action(async (name: string) => {
    // A long poll still in flight would hold the process up to its timeout after /quit.
    process.exit(await runChat(name));
  });

program.addCommand(doctorCommand());

program.addCommand(groupsCommand());
program.addCommand(tasksCommand());
program.addCommand(traceCommand());
program.addCommand(statusCommand());
program.addCommand(budgetCommand());
program.addCommand(webCommand());
program.addCommand(whatsappCommand());
program.addCommand(serviceCommand());
program.addCommand(logsCommand());

await program.parseAsync();
