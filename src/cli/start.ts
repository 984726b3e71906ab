// `pincer start`: runs pincer in the foreground until Ctrl-C (SIGINT) or SIGTERM, saying to a person at a
// terminal where it runs and that it stopped; a service's journal gets the same facts as log entries.
import { type Config, ConfigError, loadConfig } from '../config.js';
import { createLogger, type Logger, resolveLogFormat } from '../log.js';
import { type Pincer, startPincer } from '../service/app.js';
import { AlreadyRunningError } from '../service/instance-lock.js';
import { duration } from './output.js';

export async function runStart(): Promise<void> {
  let config: Config;
  try {
    config = loadConfig(process.env, process.cwd());
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`pincer: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const log = createLogger(config.logLevel, resolveLogFormat(config.logFormat, process.stdout.isTTY === true));
  let pincer: Pincer;
  try {
    pincer = await startPincer(config, log);
  } catch (err) {
    if (err instanceof AlreadyRunningError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(1);
    }
    process.stderr.write(`pincer could not start: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  }
  process.stderr.write(welcome(pincer, process.stderr.isTTY === true));
  stopOnSignals(pincer, log);
}

/**
 * Where pincer runs and how to reach it. At a terminal it is a block set apart from the log lines around it,
 * with a login link; a login link is a credential, so a service's log (the journal) never gets one.
 */
function welcome(pincer: Pincer, terminal: boolean): string {
  const running = `pincer is running: ${pincer.local.url}`;
  const chat = `talk to it: npx pincer chat  (API token in ${pincer.layout.home}/token)`;
  if (!terminal) return `${running}\n${chat}\nweb page: \`npx pincer web\` prints a one-time login link\n`;
  const bold = (text: string) => (process.env.NO_COLOR ? text : `\u001b[1m${text}\u001b[0m`);
  const login = `web page:   ${pincer.local.loginLink()}  (one-time login link, 15 min)`;
  return `\n  ${bold(running)}\n  ${chat}\n  ${login}\n\n`;
}

/** Ctrl-C or SIGTERM stops pincer in order; a second Ctrl-C while it stops leaves at once. */
function stopOnSignals(pincer: Pincer, log: Logger): void {
  const terminal = process.stderr.isTTY === true;
  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) {
      // Sandboxes die with pincer (bubblewrap's --die-with-parent), and the next start takes over the lock.
      log.warn({ signal }, 'stopping at once, without finishing the stop');
      process.exit(130);
    }
    stopping = true;
    if (terminal) process.stderr.write('\nstopping… (Ctrl-C again to quit at once)\n');
    log.info({ signal }, 'stopping');
    const began = performance.now();
    pincer
      .stop()
      .then(() => {
        const took = performance.now() - began;
        log.info({ ms: Math.round(took) }, 'stopped');
        if (terminal) process.stderr.write(`stopped (${duration(took)})\n`);
        process.exit(0);
      })
      .catch((err: unknown) => {
        log.error({ err }, 'error while stopping');
        process.exit(1);
      });
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}
