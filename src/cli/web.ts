// `pincer web`: a fresh one-time link that logs this person's browser in to the web page.
import { Command } from 'commander';
import { z } from 'zod';
import { printLine, withPincer } from './output.js';

const linkAnswer = z.object({ url: z.string().url() });

export function webCommand(): Command {
  return new Command('web').description('print a one-time link (valid 15 minutes) that opens the web page logged in').action(async () => {
    process.exitCode = await withPincer(async (client) => {
      const { url } = linkAnswer.parse(await client.request('POST', '/api/v1/login-links'));
      printLine(url);
    });
  });
}
