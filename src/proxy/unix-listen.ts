// A Unix socket's path is limited to 107 bytes, and pincer's state folder may be anywhere. Rather than
// moving sockets to a shared place such as /tmp (where another local user could create the folder first),
// a long path is bound through a descriptor of its own folder: `/proc/self/fd/N/<name>` is short, and the
// socket lands in the very folder pincer opened.
import { closeSync, constants, openSync } from 'node:fs';
import type { Server } from 'node:net';
import { basename, dirname } from 'node:path';

/** sockaddr_un holds 108 bytes, the last for the terminating NUL. */
const MAX_SOCKET_PATH = 107;

/** Listens on `socketPath`, whatever its length; resolves once listening, rejects with the listen error. */
export async function listenUnix(server: Server, socketPath: string): Promise<void> {
  if (Buffer.byteLength(socketPath) <= MAX_SOCKET_PATH) return listen(server, socketPath);
  if (process.platform !== 'linux') {
    throw new Error(`socket path ${socketPath} is longer than ${MAX_SOCKET_PATH} bytes: choose a shorter PINCER_HOME`);
  }
  const dir = openSync(dirname(socketPath), constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
  try {
    await listen(server, `/proc/self/fd/${dir}/${basename(socketPath)}`);
  } finally {
    closeSync(dir);
  }
}

function listen(server: Server, path: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => {
      server.off('error', reject);
      resolve();
    });
  });
}
