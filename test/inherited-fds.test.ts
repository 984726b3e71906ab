// A descriptor pincer inherited (a supervisor's pipe) must not reach a sandbox: bubblewrap, setpriv and prlimit
// close nothing, and the sandbox's PID 1 and relays are processes an agent's command can trace.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { describe, it } from 'node:test';

const CHILD = `
import { execFileSync } from 'node:child_process';
import { closeInheritedDescriptors } from ${JSON.stringify(new URL('../src/sandbox/inherited-fds.ts', import.meta.url).pathname)};
const before = execFileSync('ls', ['/proc/self/fd']).toString().split(/\\s+/).filter(Boolean);
const closed = closeInheritedDescriptors();
const after = execFileSync('ls', ['/proc/self/fd']).toString().split(/\\s+/).filter(Boolean);
process.stdout.write(JSON.stringify({ before, closed, after }));
`;

describe('descriptors pincer inherited', { skip: process.platform === 'linux' ? undefined : 'needs /proc' }, () => {
  it('are closed before a child starts: the child sees only stdio', async () => {
    // A shell hands the child a pipe at fd 99 without close-on-exec, as a supervisor's would be (Node itself
    // marks only its lowest descriptors close-on-exec at start).
    const child = spawn(
      'bash',
      ['-c', 'exec "$@" 99<&0', 'bash', process.execPath, '--import', 'tsx', '--input-type=module', '-e', CHILD],
      {
        stdio: ['pipe', 'pipe', 'inherit'],
      },
    );
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    await new Promise((r) => child.once('close', r));
    const { before, closed, after } = JSON.parse(out) as { before: string[]; closed: number[]; after: string[] };
    assert.ok(before.includes('99'), `the inherited pipe was not there to begin with: ${before.join(' ')}`);
    assert.ok(closed.includes(99), `fd 99 was not closed: ${closed.join(' ')}`);
    assert.ok(!after.includes('99'), `a child still inherits fd 99: ${after.join(' ')}`);
  });
});
