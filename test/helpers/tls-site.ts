// A loopback HTTPS site for egress tests, with a throwaway CA made by the openssl CLI at test time:
// GET / answers a known body, /headers echoes the request headers as JSON.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const SITE_BODY = 'hello from the pincer test site\n';

export interface TlsSite {
  port: number;
  /** PEM of the CA that signed the site's certificate (valid for site.test, *.site.test and 127.0.0.1). */
  caPath: string;
  /** TCP connections the site has accepted so far. */
  connections(): number;
  close(): Promise<void>;
}

export async function startTlsSite(): Promise<TlsSite> {
  const dir = mkdtempSync(join(tmpdir(), 'pincer-tls-'));
  const file = (name: string): string => join(dir, name);
  const openssl = (...args: string[]): void => {
    execFileSync('openssl', args, { stdio: 'pipe' });
  };
  openssl('ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', file('ca.key'));
  openssl('req', '-x509', '-new', '-key', file('ca.key'), '-subj', '/CN=pincer test CA', '-days', '2', '-out', file('ca.pem'));
  openssl('ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', file('site.key'));
  openssl('req', '-new', '-key', file('site.key'), '-subj', '/CN=site.test', '-out', file('site.csr'));
  writeFileSync(
    file('site.ext'),
    'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:site.test,DNS:*.site.test,IP:127.0.0.1\n',
  );
  openssl(
    'x509',
    '-req',
    '-in',
    file('site.csr'),
    '-CA',
    file('ca.pem'),
    '-CAkey',
    file('ca.key'),
    '-CAcreateserial',
    '-days',
    '2',
    '-extfile',
    file('site.ext'),
    '-out',
    file('site.pem'),
  );

  let connections = 0;
  const server = createServer({ key: readFileSync(file('site.key')), cert: readFileSync(file('site.pem')) }, (req, res) => {
    if (req.url === '/headers') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(req.headers));
      return;
    }
    if (req.url === '/') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(SITE_BODY);
      return;
    }
    res.writeHead(404);
    res.end();
  });
  server.on('connection', () => {
    connections += 1;
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    caPath: file('ca.pem'),
    connections: () => connections,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => {
          rmSync(dir, { recursive: true, force: true });
          resolve();
        });
      }),
  };
}
