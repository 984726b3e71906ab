// A docker daemon and an agent image for the container tests, made offline: no registry is reachable in CI.
import { execFile, spawn } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

export const TEST_IMAGE = 'pincer-test-agent:1';
const DAEMON_WAIT_MS = 20_000;

async function docker(args: string[], timeout = 15_000): Promise<string> {
  const { stdout } = await execFileAsync('docker', args, { timeout, maxBuffer: 16 * 1024 * 1024 });
  return stdout;
}

async function answers(): Promise<boolean> {
  try {
    await docker(['info', '--format', '{{.ServerVersion}}']);
    return true;
  } catch {
    return false;
  }
}

async function onPath(command: string): Promise<boolean> {
  try {
    await execFileAsync('sh', ['-c', `command -v ${command}`]);
    return true;
  } catch {
    return false;
  }
}

/**
 * Starts dockerd the way FACTS.md says (no iptables, no bridge: `--network none` only, host network untouched),
 * detached with its log in a file, so the tests can exit while it keeps serving later runs.
 */
async function startDaemon(): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return 'docker daemon not running, and only root may start one here';
  if (!(await onPath('dockerd'))) return 'docker daemon not running and dockerd is not installed (apt-get install docker.io)';
  const logFile = join(tmpdir(), 'pincer-test-dockerd.log');
  const fd = openSync(logFile, 'a');
  try {
    const child = spawn('dockerd', ['--iptables=false', '--ip-forward=false', '--bridge=none'], {
      detached: true,
      stdio: ['ignore', fd, fd],
    });
    child.on('error', () => {});
    child.unref();
  } finally {
    closeSync(fd);
  }
  const deadline = Date.now() + DAEMON_WAIT_MS;
  while (Date.now() < deadline) {
    if (await answers()) return undefined;
    await new Promise((r) => setTimeout(r, 250));
  }
  return `started dockerd but it did not answer within ${DAEMON_WAIT_MS / 1000} s (log: ${logFile})`;
}

/** The Debian mirror apt uses on this machine, so debootstrap fetches from wherever apt can. */
function debianMirror(): string {
  if (process.env.PINCER_TEST_DEBIAN_MIRROR) return process.env.PINCER_TEST_DEBIAN_MIRROR;
  const files = ['/etc/apt/sources.list'];
  if (existsSync('/etc/apt/sources.list.d')) {
    for (const f of readdirSync('/etc/apt/sources.list.d')) files.push(join('/etc/apt/sources.list.d', f));
  }
  for (const f of files) {
    if (!existsSync(f)) continue;
    const text = readFileSync(f, 'utf8');
    const found = /^URIs:\s*(\S+\/debian)\/?\s*$/m.exec(text) ?? /^deb\s+(?:\[[^\]]*\]\s+)?(\S+\/debian)\/?\s+\S+/m.exec(text);
    if (found?.[1]) return found[1];
  }
  return 'http://deb.debian.org/debian';
}

async function imageExists(tag: string): Promise<boolean> {
  try {
    await docker(['image', 'inspect', '--format', '{{.Id}}', tag]);
    return true;
  } catch {
    return false;
  }
}

let building: Promise<string> | undefined;

/**
 * The image the container tests run: a minimal Debian (bash, socat, grep, curl) from debootstrap, imported
 * into docker. Built once (~30 s), then reused. Returns its tag.
 */
export function ensureTestImage(): Promise<string> {
  building ??= (async () => {
    if (await imageExists(TEST_IMAGE)) return TEST_IMAGE;
    if (!(await onPath('debootstrap'))) throw new Error('debootstrap is not installed (apt-get install debootstrap)');
    const dir = mkdtempSync(join(tmpdir(), 'pincer-rootfs-'));
    try {
      const include = 'socat,ca-certificates,curl';
      await execFileAsync('debootstrap', ['--variant=minbase', `--include=${include}`, 'bookworm', dir, debianMirror()], {
        timeout: 600_000,
        maxBuffer: 64 * 1024 * 1024,
      });
      await execFileAsync('sh', ['-c', 'tar -C "$1" -c . | docker import - "$2"', 'import', dir, TEST_IMAGE], {
        timeout: 300_000,
        maxBuffer: 16 * 1024 * 1024,
      });
      return TEST_IMAGE;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  })();
  building.catch(() => {
    building = undefined;
  });
  return building;
}

/** Why the docker tests cannot run here, or undefined when a daemon answers and the test image is there. */
export async function dockerUnavailable(): Promise<string | undefined> {
  if (process.platform !== 'linux') return `docker tests run on Linux only (this is ${process.platform})`;
  if (!(await onPath('docker'))) return 'docker CLI not installed (apt-get install docker.io)';
  if (!(await answers())) {
    const reason = await startDaemon();
    if (reason) return reason;
  }
  try {
    await ensureTestImage();
    return undefined;
  } catch (err) {
    const e = err as { stderr?: string; message?: string };
    const detail = (e.stderr?.trim() || e.message || String(err)).split('\n').slice(-3).join(' ');
    return `cannot build the test image ${TEST_IMAGE}: ${detail}`;
  }
}
