// `pincer service`: the unit and plist texts, their quoting, and the commands install/uninstall/status run on
// Linux and macOS, recorded by a fake runner in a temporary directory. Nothing is installed on this machine.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { type Io, installService, serviceStatus, uninstallService } from '../src/service-install/actions.js';
import type { CommandResult, CommandRunner, ServiceHost } from '../src/service-install/host.js';
import { describeInstallation, type Installation, type InstallationInput, servicePath } from '../src/service-install/installation.js';
import { isDisabled, parsePrint } from '../src/service-install/launchd.js';
import { launchdPlist, xmlEscape } from '../src/service-install/launchd-plist.js';
import { environmentLine, execStartLine, quoteExecArg, systemdUnit, workingDirectoryLine } from '../src/service-install/systemd-unit.js';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** Answers each command with the first matching canned result (exit 0, no output when none matches) and records it. */
class FakeRunner implements CommandRunner {
  readonly calls: string[] = [];
  constructor(private readonly answers: Array<[RegExp, Partial<CommandResult>]> = []) {}
  async run(argv: readonly string[]): Promise<CommandResult> {
    const line = argv.join(' ');
    this.calls.push(line);
    const answer = this.answers.find(([pattern]) => pattern.test(line))?.[1];
    return { code: 0, stdout: '', stderr: '', ...answer };
  }
}

/** Collects what a command prints. */
function capture(): Io & { out: (l: string) => void; stdout: string[]; stderr: string[] } {
  const stdout: string[] = [];
  const stderr: string[] = [];
  return { stdout, stderr, out: (l) => stdout.push(l), err: (l) => stderr.push(l) };
}

function fixture(overrides: Partial<InstallationInput> = {}): Installation {
  return describeInstallation({
    execPath: '/opt/node 20/bin/node',
    packageRoot: '/opt/my apps/pincer',
    cwd: '/home/ann/My Assistant',
    env: {
      PATH: '/usr/bin:relative/bin:/bin',
      PINCER_PORT: '8000',
      ASSISTANT_NAME: 'Andy',
      ANTHROPIC_API_KEY: 'sk-ant-in-dotenv',
      TELEGRAM_BOT_TOKEN: '123:only-in-shell',
      UNRELATED_SECRET: 'never-copied',
    },
    dotenv: { ANTHROPIC_API_KEY: 'sk-ant-in-dotenv' },
    pincerHome: '/srv/pincer state',
    runtime: 'auto',
    entryExists: true,
    home: '/home/ann',
    ...overrides,
  });
}

/**
 * systemd's reading of an ExecStart= value (systemd.service(5), "Command lines"), as far as our quoting
 * uses it: double-quoted words with backslash escapes, `%%` for `%`, and `$$` for `$` in arguments.
 */
function readExecStart(value: string): string[] {
  const words: string[] = [];
  let i = 0;
  while (i < value.length) {
    if (value[i] === ' ') {
      i++;
      continue;
    }
    assert.equal(value[i], '"', `every word is quoted: ${value}`);
    let word = '';
    for (i++; value[i] !== '"'; i++) {
      assert.ok(i < value.length, `unbalanced quoting: ${value}`);
      if (value[i] === '\\') i++;
      word += value[i];
    }
    i++;
    words.push(word.replaceAll('%%', '%'));
  }
  return words.map((w, index) => (index === 0 ? w : w.replaceAll('$$', '$')));
}

/** `Environment="NAME=value"` back to its name and value. */
function readEnvironment(line: string): [string, string] {
  const match = /^Environment="(.*)"$/.exec(line);
  assert.ok(match, `an Environment= line: ${line}`);
  const assignment = (match[1] ?? '').replace(/\\(.)/g, '$1').replaceAll('%%', '%');
  const at = assignment.indexOf('=');
  return [assignment.slice(0, at), assignment.slice(at + 1)];
}

const lineOf = (text: string, key: string) => text.split('\n').filter((l) => l.startsWith(`${key}=`));

describe('what the service runs', () => {
  test('this Node and this checkout, from this directory, with an absolute PINCER_HOME and the non-secret settings of this shell', () => {
    const i = fixture();
    assert.deepEqual(i.argv, ['/opt/node 20/bin/node', '/opt/my apps/pincer/dist/cli/main.js', 'start']);
    assert.equal(i.workingDirectory, '/home/ann/My Assistant');
    assert.deepEqual(i.environment, [
      ['PINCER_HOME', '/srv/pincer state'],
      ['PATH', '/opt/node 20/bin:/usr/bin:/bin'],
      ['ASSISTANT_NAME', 'Andy'],
      ['PINCER_PORT', '8000'],
    ]);
    assert.deepEqual(i.blockers, [], 'a built checkout with a valid configuration can be installed');
    assert.equal(i.warnings.length, 1, `one warning: ${i.warnings.join(' | ')}`);
    assert.match(
      i.warnings[0] ?? '',
      /^TELEGRAM_BOT_TOKEN is set in this shell but not in \/home\/ann\/My Assistant\/\.env: the service will not have it/,
    );
  });

  test('an unbuilt checkout and an invalid configuration block a real install, each with its fix', () => {
    const i = fixture({ entryExists: false, configProblem: 'invalid configuration: PINCER_PORT: too big' });
    assert.equal(i.blockers.length, 2);
    assert.match(i.blockers[0] ?? '', /dist\/cli\/main\.js does not exist: build pincer first \(npm run build\)/);
    assert.match(i.blockers[1] ?? '', /PINCER_PORT: too big\nfix the configuration first \(pincer doctor/);
  });

  test("the service's PATH puts Node's directory first and drops relative and repeated entries", () => {
    assert.equal(
      servicePath('/home/ann/.nvm/versions/node/v20/bin/node', '/usr/bin:.:bin:/usr/bin::/bin'),
      '/home/ann/.nvm/versions/node/v20/bin:/usr/bin:/bin',
    );
    assert.equal(servicePath('/usr/bin/node', undefined), '/usr/bin:/usr/local/bin:/bin');
  });
});

describe('systemd unit text', () => {
  test('a user unit, whole', () => {
    assert.equal(
      systemdUnit(fixture(), 'user'),
      [
        '# Written by `pincer service install`; remove it with `pincer service uninstall`.',
        '# Secrets are not here: pincer reads them from the .env file in its working directory.',
        '[Unit]',
        'Description=pincer, a personal AI assistant',
        '',
        '[Service]',
        'Type=simple',
        'WorkingDirectory=/home/ann/My Assistant',
        'ExecStart="/opt/node 20/bin/node" "/opt/my apps/pincer/dist/cli/main.js" "start"',
        'Environment="PINCER_HOME=/srv/pincer state"',
        'Environment="PATH=/opt/node 20/bin:/usr/bin:/bin"',
        'Environment="ASSISTANT_NAME=Andy"',
        'Environment="PINCER_PORT=8000"',
        'Restart=on-failure',
        'RestartSec=2',
        'RestartPreventExitStatus=2',
        'KillSignal=SIGTERM',
        'KillMode=mixed',
        'TimeoutStopSec=30',
        'StandardOutput=journal',
        'StandardError=journal',
        'SyslogIdentifier=pincer',
        '',
        '[Install]',
        'WantedBy=default.target',
        '',
      ].join('\n'),
    );
  });

  test('no secret reaches the unit, whatever the shell holds', () => {
    const unit = systemdUnit(fixture(), 'system');
    for (const secret of ['sk-ant-in-dotenv', '123:only-in-shell', 'never-copied', 'ANTHROPIC_API_KEY', 'TELEGRAM_BOT_TOKEN']) {
      assert.equal(unit.includes(secret), false, `${secret} must not be in the unit`);
    }
  });

  test('a system unit: Delegate=yes for root bubblewrap (auto or bwrap), not for Docker; HOME; network-online; multi-user.target', () => {
    const auto = systemdUnit(fixture(), 'system');
    assert.deepEqual(lineOf(auto, 'Delegate'), ['Delegate=yes'], 'root bubblewrap makes a cgroup per sandbox');
    assert.deepEqual(lineOf(systemdUnit(fixture({ runtime: 'bwrap' }), 'system'), 'Delegate'), ['Delegate=yes']);
    assert.deepEqual(lineOf(systemdUnit(fixture({ runtime: 'docker' }), 'system'), 'Delegate'), [], 'Docker keeps its own cgroups');
    assert.deepEqual(lineOf(systemdUnit(fixture(), 'user'), 'Delegate'), [], 'a user unit does not run as root');
    assert.ok(auto.includes('Environment="HOME=/home/ann"\n'), `the system manager sets no HOME:\n${auto}`);
    assert.ok(auto.includes('Wants=network-online.target\nAfter=network-online.target\n'), `waits for the network:\n${auto}`);
    assert.deepEqual(lineOf(auto, 'WantedBy'), ['WantedBy=multi-user.target']);
  });

  test('quoting: spaces, quotes, backslashes, % and $ come back as they were', () => {
    // biome-ignore lint/suspicious/noTemplateCurlyInString: systemd's own ${VAR} syntax, which must stay literal
    const argv = ['/opt/odd %n $HOME dir/node', '/srv/a "quoted" \\ back\\slash/main.js', 'start', '100%', '$HOME', '${PATH}'];
    const line = execStartLine(argv);
    assert.equal(
      line,
      'ExecStart="/opt/odd %%n $HOME dir/node" "/srv/a \\"quoted\\" \\\\ back\\\\slash/main.js" "start" "100%%" "$$HOME" "$${PATH}"',
    );
    assert.deepEqual(readExecStart(line.slice('ExecStart='.length)), argv);
    assert.equal(quoteExecArg("it's"), `"it's"`);

    const env = environmentLine('PINCER_HOME', '/srv/50% "off" \\ $HOME');
    assert.equal(env, 'Environment="PINCER_HOME=/srv/50%% \\"off\\" \\\\ $HOME"', 'Environment= does not expand $');
    assert.deepEqual(readEnvironment(env), ['PINCER_HOME', '/srv/50% "off" \\ $HOME']);
    assert.equal(
      workingDirectoryLine('/home/ann/100% My "Assistant"'),
      'WorkingDirectory=/home/ann/100%% My "Assistant"',
      'taken literally, no unquoting',
    );
  });

  test('what a unit cannot carry is refused with the reason, not written wrong', () => {
    assert.throws(() => quoteExecArg('a\nb'), /control character/);
    assert.throws(() => environmentLine('PINCER_HOME', 'x\u001b[2Jy'), /control character/);
    assert.throws(() => environmentLine('BAD NAME', 'x'), /not a valid environment variable name/);
    assert.throws(() => execStartLine(['/opt/a"b/node', 'x']), /quotes or backslashes/);
    assert.throws(() => execStartLine(['node', 'x']), /absolute path/);
    assert.throws(() => workingDirectoryLine('/home/ann/trailing '), /does not end in a space or a backslash/);
    assert.throws(() => systemdUnit(fixture({ cwd: '/home/ann/line\nbreak' }), 'user'), /control character/);
  });

  test('systemd-analyze verify reads the unit without complaint and finds the program behind a path with spaces, % and $', async (t) => {
    const found = await run('systemd-analyze', ['--version']).catch(() => undefined);
    if (!found) return t.skip('systemd-analyze is not installed here');
    const dir = mkdtempSync(join(tmpdir(), 'pincer unit %n $x '));
    try {
      const binDir = join(dir, 'node bin');
      mkdirSync(binDir);
      symlinkSync(process.execPath, join(binDir, 'node'));
      const unitFile = join(dir, 'pincer.service');
      for (const scope of ['user', 'system'] as const) {
        writeFileSync(unitFile, systemdUnit(fixture({ execPath: join(binDir, 'node'), cwd: dir, pincerHome: join(dir, 'da ta') }), scope));
        const verified = await run('systemd-analyze', ['verify', '--man=no', unitFile]).then(
          (r) => ({ code: 0, stderr: r.stderr }),
          (e: { code?: number; stderr?: string }) => ({ code: e.code ?? 1, stderr: e.stderr ?? '' }),
        );
        // A wrongly quoted program path would be "not executable"; a bad line is "ignoring".
        assert.equal(verified.code, 0, `${scope} unit: ${verified.stderr}`);
        assert.doesNotMatch(verified.stderr, /pincer\.service:\d+:|not executable|ignoring/, `${scope} unit: ${verified.stderr}`);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('launchd plist text', () => {
  test('XML-escaped, restarts after a failure only, starts at load, logs to one file', async (t) => {
    const i = fixture({ cwd: '/Users/ann/R&D <pincer>', pincerHome: '/Users/ann/it\'s "data"' });
    const plist = launchdPlist(i, '/Users/ann/Library/Logs/pincer/pincer.log');
    assert.ok(plist.includes('<key>WorkingDirectory</key><string>/Users/ann/R&amp;D &lt;pincer&gt;</string>'), plist);
    assert.ok(plist.includes('<key>PINCER_HOME</key><string>/Users/ann/it&apos;s &quot;data&quot;</string>'), plist);
    assert.ok(plist.includes('<key>KeepAlive</key>\n  <dict>\n    <key>SuccessfulExit</key><false/>\n  </dict>'), plist);
    assert.ok(plist.includes('<key>RunAtLoad</key><true/>'), plist);
    assert.equal(plist.includes('sk-ant'), false, 'no secret in the plist');
    assert.throws(() => xmlEscape('bell\u0007'), /control character/);

    // Python's plistlib is a real property-list reader: the values must come back as they were.
    const python = await run('python3', ['-c', 'import plistlib']).catch(() => undefined);
    if (!python) return t.skip('python3 is not installed here to read the plist back');
    const dir = mkdtempSync(join(tmpdir(), 'pincer-plist-'));
    try {
      writeFileSync(join(dir, 'dev.pincer.plist'), plist);
      const read = await run('python3', [
        '-c',
        'import plistlib,json,sys; print(json.dumps(plistlib.load(open(sys.argv[1],"rb"))))',
        join(dir, 'dev.pincer.plist'),
      ]);
      const parsed = JSON.parse(read.stdout) as Record<string, unknown>;
      assert.deepEqual(parsed, {
        Label: 'dev.pincer',
        ProgramArguments: ['/opt/node 20/bin/node', '/opt/my apps/pincer/dist/cli/main.js', 'start'],
        WorkingDirectory: '/Users/ann/R&D <pincer>',
        EnvironmentVariables: {
          PINCER_HOME: '/Users/ann/it\'s "data"',
          PATH: '/opt/node 20/bin:/usr/bin:/bin',
          ASSISTANT_NAME: 'Andy',
          PINCER_PORT: '8000',
        },
        RunAtLoad: true,
        KeepAlive: { SuccessfulExit: false },
        ThrottleInterval: 2,
        ExitTimeOut: 30,
        StandardOutPath: '/Users/ann/Library/Logs/pincer/pincer.log',
        StandardErrorPath: '/Users/ann/Library/Logs/pincer/pincer.log',
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('install, uninstall, status with a fake runner', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'pincer-service-'));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  function host(runner: FakeRunner, overrides: Partial<ServiceHost> = {}): ServiceHost {
    return {
      platform: 'linux',
      uid: 1000,
      user: 'ann',
      home: join(dir, 'home'),
      root: join(dir, 'root'),
      systemdBooted: true,
      run: runner,
      sleep: async () => {},
      ...overrides,
    };
  }
  const userUnit = () => join(dir, 'home', '.config', 'systemd', 'user', 'pincer.service');
  const systemUnit = () => join(dir, 'root', 'etc', 'systemd', 'system', 'pincer.service');
  const plist = () => join(dir, 'home', 'Library', 'LaunchAgents', 'dev.pincer.plist');
  const options = { system: false, dryRun: false };

  test('Linux user: writes the user unit, reloads, enables and starts it, and says how to survive logout', async () => {
    const runner = new FakeRunner([[/^loginctl show-user/, { stdout: 'no\n' }]]);
    const io = capture();
    assert.equal(await installService(host(runner), fixture(), options, io), 0, io.stderr.join('\n'));
    assert.deepEqual(runner.calls, [
      'systemctl --user daemon-reload',
      'systemctl --user enable --now pincer.service',
      'loginctl show-user ann --property=Linger --value',
    ]);
    assert.equal(readFileSync(userUnit(), 'utf8'), systemdUnit(fixture(), 'user'));
    assert.match(io.stdout[0] ?? '', /^pincer is installed as a systemd user unit \(.*pincer\.service\) and running\.$/);
    assert.match(io.stdout.at(-1) ?? '', /loginctl enable-linger ann$/);
    assert.match(io.stderr.join('\n'), /warning: TELEGRAM_BOT_TOKEN is set in this shell but not in/);

    // Installing again replaces the file and restarts pincer onto it; with lingering on, no advice.
    const again = new FakeRunner([[/^loginctl show-user/, { stdout: 'yes\n' }]]);
    const io2 = capture();
    assert.equal(await installService(host(again), fixture({ env: { PINCER_PORT: '9000' } }), options, io2), 0, io2.stderr.join('\n'));
    assert.deepEqual(again.calls.slice(0, 3), [
      'systemctl --user daemon-reload',
      'systemctl --user enable --now pincer.service',
      'systemctl --user restart pincer.service',
    ]);
    assert.match(readFileSync(userUnit(), 'utf8'), /Environment="PINCER_PORT=9000"/);
    assert.match(io2.stdout[0] ?? '', /^pincer is reinstalled/);
    assert.equal(
      io2.stdout.some((l) => l.includes('enable-linger')),
      false,
      'lingering is already on',
    );
  });

  test('Linux as root: the system unit with Delegate=yes, plain systemctl', async () => {
    const runner = new FakeRunner();
    const io = capture();
    assert.equal(await installService(host(runner, { uid: 0, user: 'root' }), fixture(), options, io), 0, io.stderr.join('\n'));
    assert.deepEqual(runner.calls, ['systemctl daemon-reload', 'systemctl enable --now pincer.service']);
    assert.match(readFileSync(systemUnit(), 'utf8'), /\nDelegate=yes\n/);
    assert.equal(existsSync(userUnit()), false, 'root gets no user unit');
  });

  test('refuses cleanly where systemd does not run: nothing written, nothing run, the fix names the start command', async () => {
    const runner = new FakeRunner();
    const io = capture();
    assert.equal(await installService(host(runner, { systemdBooted: false }), fixture(), options, io), 1);
    assert.deepEqual(runner.calls, []);
    assert.equal(existsSync(userUnit()), false);
    const said = io.stderr.join('\n');
    assert.match(said, /this system does not run systemd/);
    assert.match(
      said,
      /start pincer with your init system instead .*`cd '\/home\/ann\/My Assistant' && '\/opt\/node 20\/bin\/node' '\/opt\/my apps\/pincer\/dist\/cli\/main\.js' start`/i,
    );
  });

  test('--system without root, and an unbuilt checkout, are refused before anything changes', async () => {
    const runner = new FakeRunner();
    const io = capture();
    assert.equal(await installService(host(runner), fixture({ entryExists: false }), { system: true, dryRun: false }, io), 1);
    assert.deepEqual(runner.calls, []);
    assert.equal(existsSync(systemUnit()), false);
    const said = io.stderr.join('\n');
    assert.match(said, /can only be changed by root: run this as root from this directory \(sudo .* service install --system\)/);
    assert.match(said, /npm run build/);
  });

  test('--dry-run prints the unit and the commands and changes nothing', async () => {
    const runner = new FakeRunner();
    const io = capture();
    assert.equal(await installService(host(runner, { systemdBooted: false }), fixture(), { system: false, dryRun: true }, io), 0);
    assert.deepEqual(runner.calls, [], 'a dry run runs nothing');
    assert.equal(existsSync(join(dir, 'home')), false, 'a dry run writes nothing');
    const printed = io.stdout.join('\n');
    assert.ok(printed.includes(systemdUnit(fixture(), 'user').trimEnd()), printed);
    assert.match(printed, /^systemctl --user daemon-reload\nsystemctl --user enable --now pincer\.service$/m);
    assert.match(printed, /loginctl enable-linger ann/);
    assert.match(io.stderr.join('\n'), /note: a real install would stop here: this system does not run systemd/);
  });

  test('a user manager that cannot be reached is reported with the fix, and the install stops there', async () => {
    const runner = new FakeRunner([[/daemon-reload/, { code: 1, stderr: 'Failed to connect to bus: No medium found' }]]);
    const io = capture();
    assert.equal(await installService(host(runner), fixture(), options, io), 1);
    assert.deepEqual(runner.calls, ['systemctl --user daemon-reload']);
    assert.match(
      io.stderr.at(-1) ?? '',
      /`systemctl --user daemon-reload` failed: Failed to connect to bus: No medium found\nfix: .*machinectl shell ann@/,
    );
  });

  test('Linux uninstall: disable --now, remove, reload, forget a failure; nothing installed is not an error', async () => {
    mkdirSync(dirname(userUnit()), { recursive: true });
    writeFileSync(userUnit(), systemdUnit(fixture(), 'user'));
    const runner = new FakeRunner([[/reset-failed/, { code: 1, stderr: 'Unit pincer.service not loaded.' }]]);
    const io = capture();
    assert.equal(await uninstallService(host(runner), fixture(), options, io), 0, io.stderr.join('\n'));
    assert.deepEqual(runner.calls, [
      'systemctl --user disable --now pincer.service',
      'systemctl --user daemon-reload',
      'systemctl --user reset-failed pincer.service',
    ]);
    assert.equal(existsSync(userUnit()), false);

    const none = new FakeRunner();
    const io2 = capture();
    assert.equal(await uninstallService(host(none), fixture(), options, io2), 0);
    assert.deepEqual(none.calls, []);
    assert.match(io2.stdout[0] ?? '', /^no pincer service is installed/);
  });

  test('a non-root user finds the system unit and is told to uninstall it as root', async () => {
    mkdirSync(dirname(systemUnit()), { recursive: true });
    writeFileSync(systemUnit(), systemdUnit(fixture(), 'system'));
    const runner = new FakeRunner();
    const io = capture();
    assert.equal(await uninstallService(host(runner), fixture(), options, io), 1);
    assert.deepEqual(runner.calls, []);
    assert.ok(existsSync(systemUnit()), 'left in place');
    assert.match(io.stderr.join('\n'), /sudo .* service uninstall --system/);
  });

  test('Linux status: installed, enabled, running since, restarts, last exit, logs', async () => {
    mkdirSync(dirname(userUnit()), { recursive: true });
    writeFileSync(userUnit(), systemdUnit(fixture(), 'user'));
    const show = [
      'LoadState=loaded',
      'ActiveState=active',
      'SubState=running',
      'UnitFileState=enabled',
      'MainPID=4242',
      'ActiveEnterTimestamp=Mon 2025-06-02 10:00:00 CEST',
      'InactiveEnterTimestamp=Mon 2025-06-02 09:59:58 CEST',
      'ExecMainExitTimestamp=',
      'ExecMainCode=0',
      'ExecMainStatus=0',
      'Result=success',
      'NRestarts=2',
      'WorkingDirectory=/home/ann/My Assistant',
    ].join('\n');
    const runner = new FakeRunner([
      [/ show pincer\.service/, { stdout: `${show}\n` }],
      [/^loginctl/, { stdout: 'yes\n' }],
    ]);
    const io = capture();
    assert.equal(await serviceStatus(host(runner), fixture(), { system: false }, io), 0);
    assert.match(runner.calls[0] ?? '', /^systemctl --user show pincer\.service --property=LoadState,ActiveState,/);
    assert.deepEqual(io.stdout, [
      'pincer systemd user unit',
      `  file       ${userUnit()}`,
      '  enabled    yes (starts with your user manager)',
      '  running    yes (active (running)), pid 4242',
      '  since      Mon 2025-06-02 10:00:00 CEST',
      '  restarts   2',
      '  directory  /home/ann/My Assistant',
      '  logs       pincer logs -f   (or journalctl --user -u pincer.service)',
    ]);
  });

  test('Linux status of a failed unit: the last exit, a note, exit code 3; not installed is 3 as well', async () => {
    mkdirSync(dirname(systemUnit()), { recursive: true });
    writeFileSync(systemUnit(), systemdUnit(fixture(), 'system'));
    const show = [
      'LoadState=loaded',
      'ActiveState=failed',
      'SubState=failed',
      'UnitFileState=enabled',
      'MainPID=0',
      'InactiveEnterTimestamp=Mon 2025-06-02 10:05:00 CEST',
      'ExecMainExitTimestamp=Mon 2025-06-02 10:05:00 CEST',
      'ExecMainCode=2',
      'ExecMainStatus=9',
      'Result=signal',
      'NRestarts=5',
      'WorkingDirectory=/elsewhere',
    ].join('\n');
    const runner = new FakeRunner([[/ show /, { stdout: show }]]);
    const io = capture();
    assert.equal(await serviceStatus(host(runner, { uid: 0, user: 'root' }), fixture(), { system: false }, io), 3);
    const printed = io.stdout.join('\n');
    assert.match(printed, /^pincer systemd system unit$/m);
    assert.match(printed, /^ {2}running {4}no \(failed \(failed\)\)$/m);
    assert.match(printed, /^ {2}last exit {2}killed by SIGKILL at Mon 2025-06-02 10:05:00 CEST \(result: signal\)$/m);
    assert.match(printed, /^note: it failed: pincer logs shows why/m);
    assert.match(printed, /^note: it runs the pincer in \/elsewhere, not the one in this directory/m);
    assert.equal(
      runner.calls.some((c) => c.startsWith('loginctl')),
      false,
      'lingering is about user units',
    );

    rmSync(systemUnit());
    const io2 = capture();
    assert.equal(await serviceStatus(host(new FakeRunner(), { uid: 0 }), fixture(), { system: false }, io2), 3);
    assert.match(io2.stdout[0] ?? '', /^pincer is not installed as a service \(there is no .*\): pincer service install sets one up\.$/);
  });

  test('macOS: a LaunchAgent in gui/<uid>, its log folder made, enabled and bootstrapped', async () => {
    const runner = new FakeRunner();
    const io = capture();
    const mac = host(runner, { platform: 'darwin', uid: 501 });
    assert.equal(await installService(mac, fixture(), options, io), 0, io.stderr.join('\n'));
    assert.deepEqual(runner.calls, ['launchctl enable gui/501/dev.pincer', `launchctl bootstrap gui/501 ${plist()}`]);
    assert.equal(readFileSync(plist(), 'utf8'), launchdPlist(fixture(), join(dir, 'home', 'Library', 'Logs', 'pincer', 'pincer.log')));
    assert.ok(existsSync(join(dir, 'home', 'Library', 'Logs', 'pincer')), 'the log folder exists for launchd to open');
    assert.match(io.stdout[0] ?? '', /^pincer is installed as a launchd agent/);
  });

  test('macOS reinstall: boots the old job out and retries a bootstrap that races its teardown', async () => {
    mkdirSync(dirname(plist()), { recursive: true });
    writeFileSync(plist(), 'old');
    let bootstraps = 0;
    const runner = new FakeRunner();
    const racing: CommandRunner = {
      run: async (argv) => {
        const result = await runner.run(argv);
        if (argv[1] === 'bootstrap' && bootstraps++ === 0)
          return { code: 5, stdout: '', stderr: 'Bootstrap failed: 5: Input/output error' };
        return result;
      },
    };
    const io = capture();
    assert.equal(
      await installService(host(runner, { platform: 'darwin', uid: 501, run: racing }), fixture(), options, io),
      0,
      io.stderr.join('\n'),
    );
    assert.deepEqual(runner.calls, [
      'launchctl bootout gui/501/dev.pincer',
      'launchctl enable gui/501/dev.pincer',
      `launchctl bootstrap gui/501 ${plist()}`,
      `launchctl bootstrap gui/501 ${plist()}`,
    ]);
  });

  test('macOS without a desktop session: the bootstrap failure says to log in or use --system', async () => {
    const runner = new FakeRunner([
      [/bootstrap/, { code: 125, stderr: 'Bootstrap failed: 125: Domain does not support specified action' }],
    ]);
    const io = capture();
    assert.equal(await installService(host(runner, { platform: 'darwin', uid: 501 }), fixture(), options, io), 1);
    assert.match(io.stderr.at(-1) ?? '', /fix: a launchd agent runs in ann's desktop session .* install a daemon as root with --system/);
  });

  test('macOS uninstall boots out and removes the plist, and says the logs stay', async () => {
    mkdirSync(dirname(plist()), { recursive: true });
    writeFileSync(plist(), 'x');
    const runner = new FakeRunner([[/bootout/, { code: 3, stderr: 'Boot-out failed: 3: No such process' }]]);
    const io = capture();
    assert.equal(await uninstallService(host(runner, { platform: 'darwin', uid: 501 }), fixture(), options, io), 0, io.stderr.join('\n'));
    assert.deepEqual(runner.calls, ['launchctl bootout gui/501/dev.pincer']);
    assert.equal(existsSync(plist()), false);
    assert.match(io.stdout.join('\n'), /logs are kept in .*Library\/Logs\/pincer\/pincer\.log/);
  });

  test('macOS status from launchctl print, print-disabled and ps', async () => {
    mkdirSync(dirname(plist()), { recursive: true });
    writeFileSync(plist(), 'x');
    const print = [
      'gui/501/dev.pincer = {',
      '\tactive count = 1',
      `\tpath = ${plist()}`,
      '\tstate = running',
      '\tprogram = /opt/node 20/bin/node',
      '\targuments = {',
      '\t\tstate = nested, not ours',
      '\t}',
      '\tworking directory = /home/ann/My Assistant',
      '\truns = 3',
      '\tpid = 777',
      '\tlast exit code = 1',
      '\tlast terminating signal = Terminated: 15',
      '}',
    ].join('\n');
    const runner = new FakeRunner([
      [/^launchctl print gui/, { stdout: print }],
      [/^launchctl print-disabled/, { stdout: 'disabled services = {\n\t"dev.pincer" => enabled\n}\n' }],
      [/^ps /, { stdout: 'Mon Jun  2 10:00:00 2025\n' }],
    ]);
    const io = capture();
    assert.equal(await serviceStatus(host(runner, { platform: 'darwin', uid: 501 }), fixture(), { system: false }, io), 0);
    assert.deepEqual(runner.calls, ['launchctl print gui/501/dev.pincer', 'launchctl print-disabled gui/501', 'ps -o lstart= -p 777']);
    assert.deepEqual(io.stdout, [
      'pincer launchd agent',
      `  file       ${plist()}`,
      '  enabled    yes (starts at login)',
      '  running    yes (running), pid 777',
      '  since      Mon Jun  2 10:00:00 2025',
      '  restarts   2',
      '  last exit  exit code 1 (Terminated: 15)',
      '  directory  /home/ann/My Assistant',
      `  logs       pincer logs -f   (or tail -F ${join(dir, 'home', 'Library', 'Logs', 'pincer', 'pincer.log')})`,
    ]);
    assert.equal(parsePrint(print).get('state'), 'running', 'a nested block does not shadow the top level');
    assert.equal(isDisabled('\t"dev.pincer" => disabled\n'), true);
    assert.equal(isDisabled('\t"dev.pincer" => true\n'), true, 'older macOS says true for disabled');
    assert.equal(isDisabled('\t"dev.pincer.other" => disabled\n'), false);
  });

  test('another platform is refused with the command to run under its own service manager', async () => {
    const runner = new FakeRunner();
    const io = capture();
    assert.equal(await installService(host(runner, { platform: 'freebsd' }), fixture(), options, io), 1);
    assert.deepEqual(runner.calls, []);
    assert.match(
      io.stderr[0] ?? '',
      /knows systemd \(Linux\) and launchd \(macOS\), not freebsd: start pincer under your own service manager with `cd /,
    );
  });
});

describe('the real CLI', () => {
  test('pincer service install --dry-run from a directory with a space prints this installation and changes nothing', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'pincer cli '));
    try {
      writeFileSync(join(cwd, '.env'), 'ANTHROPIC_API_KEY=sk-ant-from-dotenv-file\n');
      const tsx = import.meta.resolve('tsx');
      const { stdout, stderr } = await run(
        process.execPath,
        ['--import', tsx, join(ROOT, 'src', 'cli', 'main.ts'), 'service', 'install', '--dry-run'],
        {
          cwd,
          timeout: 30_000,
          env: {
            PATH: process.env.PATH ?? '',
            HOME: process.env.HOME ?? '',
            PINCER_HOME: 'state dir',
            PINCER_PORT: '8011',
            DISCORD_BOT_TOKEN: 'discord-shell-secret',
          },
        },
      );
      assert.equal(
        stdout.includes('sk-ant-from-dotenv-file') || stdout.includes('discord-shell-secret'),
        false,
        `no secret in:\n${stdout}`,
      );
      assert.match(stderr, /warning: DISCORD_BOT_TOKEN is set in this shell but not in .*\.env/);
      if (process.platform === 'darwin') {
        assert.match(stdout, /<key>WorkingDirectory<\/key><string>[^<]*pincer cli [^<]*<\/string>/);
        return;
      }
      const root = process.getuid?.() === 0;
      assert.match(
        stdout,
        new RegExp(`^# pincer service install --dry-run: the systemd ${root ? 'system' : 'user'} unit; nothing is changed\\.$`, 'm'),
      );
      assert.ok(stdout.includes(`\nWorkingDirectory=${cwd}\n`), stdout);
      assert.ok(stdout.includes(`\nExecStart="${process.execPath}" "${join(ROOT, 'dist', 'cli', 'main.js')}" "start"\n`), stdout);
      assert.ok(stdout.includes(`\nEnvironment="PINCER_HOME=${join(cwd, 'state dir')}"\n`), stdout);
      assert.ok(stdout.includes('\nEnvironment="PINCER_PORT=8011"\n'), stdout);
      assert.match(stdout, /^Restart=on-failure\nRestartSec=2\n/m);
      assert.equal(stdout.includes('\nDelegate=yes\n'), root, 'Delegate=yes exactly when the unit runs as root');
      assert.match(stdout, new RegExp(`^systemctl${root ? '' : ' --user'} enable --now pincer\\.service$`, 'm'));
      assert.equal(existsSync(join(cwd, 'state dir')), false, 'a dry run creates no state');
    } finally {
      rmSync(cwd, { recursive: true, force: true });
    }
  });
});
