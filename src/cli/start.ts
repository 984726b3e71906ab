import { type Config, ConfigError, loadConfig } from '../config.js';
import { createLogger } from '../log.js';
import { type Pincer, startPincer } from '../service/app.js';
import { AlreadyRunningError } from '../service/instance-lock.js';

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
  const log = createLogger(config.logLevel);
  let pincer: Pincer;
  try {
    pincer = await startPincer(config, log);
  } catch (err) {
    if (err instanceof AlreadyRunningError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
  // A login link is a credential: only a person at a terminal gets one, never a service's log (the journal).
  const login = process.stderr.isTTY
    ? `web page, one-time login link (15 min): ${pincer.local.loginLink()}`
    : 'web page: `npx pincer web` prints a one-time login link';
  process.stderr.write(
    `pincer is running: ${pincer.local.url}  (talk to it: npx pincer chat; token in ${pincer.layout.home}/token)\n${login}\n`,
  );
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping');
    pincer
      .stop()
      .then(() => process.exit(0))
      .catch((err: unknown) => {
        log.error({ err }, 'error while stopping');
        process.exit(1);
      });
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}
