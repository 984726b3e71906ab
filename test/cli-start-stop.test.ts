// `pincer` as a person meets it in a terminal: what it says without a command, with a typo, or with a command
// that only has subcommands; and `pincer start` stopped with Ctrl-C in a real pseudo-terminal (tmux).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { pincer } from './helpers/cli.js';

const VERSION = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
/** Nothing listens there and nothing is started: these commands never reach a pincer. */
const NOWHERE = { port: 9, home: '/nonexistent/pincer-home' };

describe('pincer without a command, with a typo, without a subcommand', () => {
  test('no command prints the help, naming every command, and exits 0 (it does not start pincer)', async () => {
    const out = await pincer(NOWHERE);
    assert.equal(out.code, 0, out.stderr);
    assert.equal(out.stderr, '');
    assert.match(out.stdout, /^Usage: pincer \[options\] \[command\]\n/);
    for (const command of ['start', 'chat', 'doctor', 'groups', 'tasks', 'status', 'logs'])
      assert.match(out.stdout, new RegExp(`^  ${command}\\b`, 'm'), `the help names ${command}`);
  });

  test('--version and -V print the version of package.json', async () => {
    const [long, short] = await Promise.all([pincer(NOWHERE, '--version'), pincer(NOWHERE, '-V')]);
    assert.deepEqual(long, { code: 0, stdout: `${VERSION}\n`, stderr: '' });
    assert.deepEqual(short, long);
  });

  test('an unknown command is an error that suggests the nearest one, at the top and below', async () => {
    const [top, below] = await Promise.all([pincer(NOWHERE, 'stauts'), pincer(NOWHERE, 'groups', 'lsit')]);
    assert.deepEqual(top, { code: 1, stdout: '', stderr: "error: unknown command 'stauts'\n(Did you mean status?)\n" });
    assert.deepEqual(below, { code: 1, stdout: '', stderr: "error: unknown command 'lsit'\n(Did you mean list?)\n" });
  });

  test('a command that only has subcommands, given alone, prints its help and exits 0', async () => {
    const commands = ['groups', 'tasks', 'service', 'whatsapp'];
    const outs = await Promise.all(commands.map((command) => pincer(NOWHERE, command)));
    for (const [i, command] of commands.entries()) {
      const out = outs[i] ?? assert.fail(command);
      assert.equal(out.code, 0, `${command}: ${out.stderr}`);
      assert.equal(out.stderr, '');
      assert.match(out.stdout, new RegExp(`^Usage: pincer ${command} \\[options\\] \\[command\\]\\n`));
      assert.match(out.stdout, /^Commands:$/m);
    }
  });
});
