// What a service must run to be "this pincer": this Node, this checkout's CLI, this working directory (whose
// .env pincer reads) and the non-secret settings of this shell. Secrets are never copied into a unit file.
import { existsSync, readFileSync } from 'node:fs';
import { delimiter, dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseDotenv } from 'dotenv';
import { ConfigError, loadConfig } from '../config.js';

/**
 * Settings copied from this shell into the unit, so the service behaves as `npm start` here does. Only
 * these: a unit's Environment= is readable by every local user (`systemctl show`, /etc is world-readable).
 */
const CARRIED_SETTINGS = [
  'ASSISTANT_NAME',
  'TZ',
  'PINCER_HOST',
  'PINCER_PORT',
  'PINCER_ALLOWED_HOSTS',
  'MAX_CONCURRENT_AGENTS',
  'PINCER_RUNTIME',
  'PINCER_CONTAINER_IMAGE',
  'PINCER_SANDBOX_MEMORY_MB',
  'PINCER_SANDBOX_PIDS',
  'PINCER_SANDBOX_CPU_SEC',
  'PINCER_SANDBOX_TMP_MB',
  'PINCER_SANDBOX_FILE_MB',
  'PINCER_SANDBOX_UID_BASE',
  'PINCER_MOUNT_ALLOWLIST',
  'PINCER_MEDIA_MAX_MB',
  'PINCER_BUDGET_DAILY_USD',
  'PINCER_BUDGET_MONTHLY_USD',
  'PINCER_MAIN_CHAT',
  'TELEGRAM_API_ROOT',
  'SLACK_API_URL',
  'DISCORD_API_URL',
  'SIGNAL_CLI_URL',
  'WHATSAPP_ENABLED',
  'ANTHROPIC_BASE_URL',
  'PINCER_MODEL',
  'PINCER_MODEL_MAX_RETRIES',
  'PINCER_IDLE_TIMEOUT_SEC',
  'PINCER_TURN_TIMEOUT_SEC',
  'LOG_LEVEL',
] as const;

/** Credentials and personal identifiers: they stay in the .env file pincer reads from its working directory. */
export const PRIVATE_SETTINGS = [
  'ANTHROPIC_API_KEY',
  'CLAUDE_CODE_OAUTH_TOKEN',
  'PINCER_TOKEN',
  'TELEGRAM_BOT_TOKEN',
  'SLACK_BOT_TOKEN',
  'SLACK_APP_TOKEN',
  'DISCORD_BOT_TOKEN',
  'SIGNAL_ACCOUNT',
] as const;

export type SandboxRuntimeSetting = 'auto' | 'bwrap' | 'docker' | 'podman' | 'apple-container';

export interface Installation {
  /** The service's command line: this Node, the CLI entry of this checkout, `start`. */
  argv: string[];
  workingDirectory: string;
  /** Non-secret variables for the service, in a stable order. */
  environment: Array<[name: string, value: string]>;
  /** This user's home directory: system units get no $HOME of their own. */
  home: string;
  runtime: SandboxRuntimeSetting;
  /** What keeps a real install from working, each with its fix. A dry run shows them as notes. */
  blockers: string[];
  /** What the owner should know but does not stop the install. */
  warnings: string[];
}

export interface InstallationInput {
  execPath: string;
  /** The directory holding package.json: dist/ and src/ are below it. */
  packageRoot: string;
  cwd: string;
  /** This shell's environment. */
  env: Record<string, string | undefined>;
  /** The variables in the working directory's .env file. */
  dotenv: Record<string, string>;
  /** PINCER_HOME as pincer resolves it, absolute. */
  pincerHome: string;
  runtime: SandboxRuntimeSetting;
  entryExists: boolean;
  home: string;
  /** Why the configuration is invalid, when it is. */
  configProblem?: string;
}

/** The service's PATH: this shell's absolute entries, Node's own directory first (nvm and the like are not on the default PATH). */
export function servicePath(execPath: string, shellPath: string | undefined): string {
  const entries = [dirname(execPath), ...(shellPath ?? '/usr/local/bin:/usr/bin:/bin').split(delimiter)];
  // Relative entries would resolve against the working directory of the service: never what was meant.
  return [...new Set(entries.filter((p) => p.length > 0 && isAbsolute(p)))].join(delimiter);
}

/** Pure: the installation from what was read about this machine. */
export function describeInstallation(input: InstallationInput): Installation {
  const entry = join(input.packageRoot, 'dist', 'cli', 'main.js');
  const environment: Array<[string, string]> = [
    ['PINCER_HOME', input.pincerHome],
    ['PATH', servicePath(input.execPath, input.env.PATH)],
  ];
  for (const name of CARRIED_SETTINGS) {
    const value = input.env[name];
    if (value !== undefined && value !== '') environment.push([name, value]);
  }
  const blockers: string[] = [];
  if (!input.entryExists) blockers.push(`${entry} does not exist: build pincer first (npm run build), then run this again`);
  if (input.configProblem) blockers.push(`${input.configProblem}\nfix the configuration first (pincer doctor shows what is wrong)`);
  const warnings: string[] = [];
  const dotenvPath = join(input.cwd, '.env');
  for (const name of PRIVATE_SETTINGS) {
    if (input.env[name] && !input.dotenv[name]) {
      warnings.push(
        `${name} is set in this shell but not in ${dotenvPath}: the service will not have it. Add it to that file (chmod 600 .env)`,
      );
    }
  }
  return {
    argv: [input.execPath, entry, 'start'],
    workingDirectory: input.cwd,
    environment,
    home: input.home,
    runtime: input.runtime,
    blockers,
    warnings,
  };
}

function readDotenv(cwd: string): Record<string, string> {
  const path = join(cwd, '.env');
  try {
    return existsSync(path) ? parseDotenv(readFileSync(path)) : {};
  } catch {
    return {};
  }
}

/** This pincer, as the shell that runs `pincer service install` sees it. */
export function currentInstallation(home: string): Installation {
  // src/service-install/ or dist/service-install/: the package root is two levels up either way.
  const packageRoot = fileURLToPath(new URL('../..', import.meta.url));
  const cwd = process.cwd();
  const dotenv = readDotenv(cwd);
  let pincerHome: string;
  let runtime: SandboxRuntimeSetting;
  let configProblem: string | undefined;
  try {
    const config = loadConfig(process.env, cwd);
    pincerHome = config.home;
    runtime = config.runtime;
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    configProblem = err.message;
    pincerHome = resolve(cwd, process.env.PINCER_HOME || dotenv.PINCER_HOME || 'data');
    runtime = 'auto';
  }
  return describeInstallation({
    execPath: process.execPath,
    packageRoot,
    cwd,
    env: process.env,
    dotenv,
    pincerHome,
    runtime,
    entryExists: existsSync(join(packageRoot, 'dist', 'cli', 'main.js')),
    home,
    ...(configProblem ? { configProblem } : {}),
  });
}
