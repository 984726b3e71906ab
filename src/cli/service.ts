// `pincer service install|uninstall|status`: pincer as a systemd unit (Linux) or launchd job (macOS) that
// starts at boot or login and restarts after a crash.
import { Command } from 'commander';
import { type Io, installService, serviceStatus, uninstallService } from '../service-install/actions.js';
import { currentHost } from '../service-install/host.js';
import { currentInstallation } from '../service-install/installation.js';

const io: Io = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
};

interface Flags {
  system?: boolean;
  dryRun?: boolean;
}

export function serviceCommand(): Command {
  const service = new Command('service').description('run pincer as a service: systemd (Linux) or launchd (macOS)');
  const systemHelp = 'the system unit (macOS: a launchd daemon) that runs as root; the default when root';

  service
    .command('install')
    .description('install and start a service that runs this pincer from this directory, restarting it after a failure')
    .option('--system', systemHelp)
    .option('--dry-run', 'print the unit and the commands; change nothing')
    .action(async (flags: Flags) => {
      const host = currentHost();
      process.exitCode = await installService(host, currentInstallation(host.home), { system: !!flags.system, dryRun: !!flags.dryRun }, io);
    });

  service
    .command('uninstall')
    .description('stop, disable and remove the service (logs stay)')
    .option('--system', systemHelp)
    .option('--dry-run', 'print the commands; change nothing')
    .action(async (flags: Flags) => {
      const host = currentHost();
      process.exitCode = await uninstallService(
        host,
        currentInstallation(host.home),
        { system: !!flags.system, dryRun: !!flags.dryRun },
        io,
      );
    });

  service
    .command('status')
    .description('whether the service is installed, enabled and running, since when, its last exit and its logs (exit 0: running, 3: not)')
    .option('--system', 'look at the system unit (launchd daemon) first')
    .action(async (flags: Flags) => {
      const host = currentHost();
      process.exitCode = await serviceStatus(host, currentInstallation(host.home), { system: !!flags.system }, io);
    });

  return service;
}
