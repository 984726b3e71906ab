// `pincer doctor`: what this machine needs to run pincer, each proven with a real action where one is cheap
// (a sandbox start, a model request through pincer's proxy, each channel's API), each failure with its fix.
// It can run beside a live pincer: it changes nothing of its state.
import { existsSync, statSync } from 'node:fs';
import { Command } from 'commander';
import { type Config, ConfigError, loadConfig } from '../config.js';
import { canChangeOwners } from '../sandbox/access.js';
import { channelChecks } from './doctor/channels.js';
import { type Check, exitCode, fail, ok, renderJson, renderText } from './doctor/check.js';
import { memoryCheck } from './doctor/memory.js';
import { modelChecks } from './doctor/model.js';
import { sandboxChecks } from './doctor/sandbox.js';
import {
  diskCheck,
  mountAllowlistCheck,
  nodeCheck,
  portCheck,
  sandboxPathCheck,
  stateDirCheck,
  storeChecks,
  tokenCheck,
} from './doctor/system.js';

export interface DoctorOptions {
  /** One JSON document on stdout instead of lines for a person. */
  json?: boolean;
  env?: Record<string, string | undefined>;
  cwd?: string;
}

/** Every check, in the order they are shown; independent ones run at the same time. */
export async function collectChecks(env: Record<string, string | undefined>, cwd: string): Promise<Check[]> {
  const checks: Check[] = [nodeCheck()];
  let config: Config;
  try {
    config = loadConfig(env, cwd);
    checks.push(ok('config', 'environment and .env are valid'));
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    checks.push(
      fail(
        'config',
        err.message.replace(/\n\s*/g, ' '),
        'correct the variable named above (README.md, Configuration), in .env or the environment',
      ),
    );
    return checks;
  }

  const stateDir = stateDirCheck(config);
  // The sandbox's scratch state goes where a real sandbox's folders are (inside PINCER_HOME) when that is as
  // pincer leaves it at start; as root that includes the home being passable (0711) for the sandbox users.
  const homeUsable =
    stateDir.status === 'ok' && existsSync(config.home) && (!canChangeOwners() || (statSync(config.home).mode & 0o001) !== 0);
  const [sandbox, model, memory, channels, port] = await Promise.all([
    sandboxChecks(config, homeUsable ? config.home : undefined),
    modelChecks(config),
    memoryCheck(config),
    channelChecks(config.channels, config.home),
    portCheck(config),
  ]);
  checks.push(stateDir, ...sandboxPathCheck(config), tokenCheck(config), ...storeChecks(config), diskCheck(config));
  checks.push(...sandbox, mountAllowlistCheck(config.mountAllowlistPath));
  checks.push(...model, memory, ...channels, port);
  return checks;
}

export async function runDoctor(options: DoctorOptions = {}): Promise<number> {
  const checks = await collectChecks(options.env ?? process.env, options.cwd ?? process.cwd());
  process.stdout.write(options.json ? renderJson(checks) : renderText(checks));
  return exitCode(checks);
}

/** `pincer doctor [--json]`. */
export function doctorCommand(): Command {
  return new Command('doctor')
    .description('check that this machine can run pincer, and say how to fix what it cannot')
    .option('--json', 'one JSON document for scripts: {ok, checks: [{name, status, detail, fix?, ms?}]}')
    .action(async (opts: { json?: boolean }) => {
      process.exitCode = await runDoctor({ json: opts.json === true });
    });
}
