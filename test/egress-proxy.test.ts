import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import { refusedAddressReason } from '../src/proxy/address-class.js';
import { describePolicy, type EgressPolicy, egressPolicySchema, hostAllowedByPolicy } from '../src/proxy/egress-policy.js';
import { type EgressProxyOptions, type EgressRecord, parseAuthority, startEgressProxy } from '../src/proxy/egress-proxy.js';
import { SITE_BODY, startTlsSite, type TlsSite } from './helpers/tls-site.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const LOOPBACK_ONLY = (a: string) => a === '127.0.0.1';

describe('egress policy', () => {
  const allowlist: EgressPolicy = { mode: 'allowlist', domains: ['site.test', 'pypi.org'] };
  const cases: Array<[string, EgressPolicy, boolean]> = [
    ['example.com', { mode: 'open' }, true],
    ['10.0.0.1', { mode: 'open' }, true],
    ['example.com', { mode: 'none' }, false],
    ['site.test', allowlist, true],
    ['a.site.test', allowlist, true],
    ['deep.a.site.test', allowlist, true],
    ['SITE.Test.', allowlist, true],
    ['files.pypi.org', allowlist, true],
    ['other.test', allowlist, false],
    ['notsite.test', allowlist, false],
    ['site.test.evil.com', allowlist, false],
    ['test', allowlist, false],
    ['', allowlist, false],
  ];
  for (const [host, policy, ok] of cases) {
    it(`${ok ? 'allows' : 'refuses'} ${JSON.stringify(host)} under ${describePolicy(policy)}`, () => {
      assert.equal(hostAllowedByPolicy(host, policy).ok, ok);
    });
  }

  it('gives reasons that name the policy', () => {
    assert.deepEqual(hostAllowedByPolicy('site.test', { mode: 'none' }), { ok: false, reason: 'egress policy is none' });
    assert.deepEqual(hostAllowedByPolicy('Other.Test', allowlist), {
      ok: false,
      reason: 'other.test is not allowed by egress policy allowlist: site.test, pypi.org',
    });
  });

  it('describes policies for humans', () => {
    assert.equal(describePolicy({ mode: 'open' }), 'open');
    assert.equal(describePolicy({ mode: 'none' }), 'none');
    assert.equal(describePolicy({ mode: 'allowlist', domains: ['github.com', 'pypi.org'] }), 'allowlist: github.com, pypi.org');
    assert.equal(describePolicy({ mode: 'allowlist', domains: [] }), 'allowlist: (empty)');
  });

  it('normalizes listed domains and rejects what is not a host name', () => {
    assert.deepEqual(egressPolicySchema.parse({ mode: 'allowlist', domains: [' GitHub.com. ', 'pypi.org'] }), {
      mode: 'allowlist',
      domains: ['github.com', 'pypi.org'],
    });
    assert.deepEqual(egressPolicySchema.parse({ mode: 'open' }), { mode: 'open' });
    assert.deepEqual(egressPolicySchema.parse({ mode: 'none' }), { mode: 'none' });
    for (const bad of ['https://github.com', 'github.com:443', '*.github.com', 'github.com/path', 'a b.com', '-x.com', 'a..b', '']) {
      const result = egressPolicySchema.safeParse({ mode: 'allowlist', domains: [bad] });
      assert.equal(result.success, false, `${JSON.stringify(bad)} should be rejected`);
    }
    assert.equal(egressPolicySchema.safeParse({ mode: 'everything' }).success, false);
    assert.equal(egressPolicySchema.safeParse({ mode: 'allowlist' }).success, false);
  });
});

describe('address classes', () => {
  const refused: Array<[string, RegExp]> = [
    ['127.0.0.1', /^127\.0\.0\.1 is a loopback address$/],
    ['127.8.9.10', /loopback/],
    ['10.1.2.3', /^10\.1\.2\.3 is a private address$/],
    ['172.16.0.1', /private/],
    ['172.31.255.254', /private/],
    ['192.168.1.1', /private/],
    ['169.254.169.254', /link-local.*metadata/],
    ['169.254.1.1', /link-local/],
    ['100.64.0.1', /carrier-grade NAT/],
    ['0.0.0.0', /unspecified/],
    ['255.255.255.255', /broadcast/],
    ['224.0.0.1', /multicast/],
    ['240.0.0.1', /reserved/],
    ['192.0.2.1', /reserved/],
    ['::1', /loopback/],
    ['::', /unspecified/],
    ['fc00::1', /unique-local/],
    ['fd12:3456::1', /unique-local/],
    ['fd00:ec2::254', /AWS metadata/],
    ['fe80::1', /link-local/],
    ['fe80::1%eth0', /scoped/],
    ['ff02::1', /multicast/],
    ['fec0::1', /site-local/],
    ['2001:db8::1', /reserved/],
    ['::ffff:10.0.0.1', /private address \(IPv4-mapped 10\.0\.0\.1\)/],
    ['::ffff:127.0.0.1', /loopback address \(IPv4-mapped 127\.0\.0\.1\)/],
    ['::ffff:169.254.169.254', /metadata/],
    ['::ffff:7f00:1', /loopback/],
    ['::ffff:0:a00:1', /private address \(IPv4-translated/],
    ['::127.0.0.1', /IPv4-compatible/],
    ['::7f00:1', /not a global unicast/],
    ['64:ff9b::10.0.0.1', /private address \(NAT64 10\.0\.0\.1\)/],
    ['64:ff9b:1::a00:1', /local-use NAT64/],
    ['2002:a00:1::1', /private address \(6to4 10\.0\.0\.1\)/],
    ['2002:7f00:1::1', /loopback address \(6to4/],
    // Teredo: server 65.54.227.120, client 10.0.0.1 stored bit-inverted (f5ff:fffe).
    ['2001:0:4136:e378:8000:63bf:f5ff:fffe', /private address \(Teredo client 10\.0\.0\.1\)/],
    ['localhost', /not an IP address/],
    ['example.com', /not an IP address/],
    ['1.2.3', /not an IP address/],
    ['', /not an IP address/],
  ];
  for (const [address, pattern] of refused) {
    it(`refuses ${JSON.stringify(address)}`, () => {
      assert.match(refusedAddressReason(address) ?? 'ALLOWED', pattern);
    });
  }

  const allowed = [
    '8.8.8.8',
    '1.1.1.1',
    '140.82.112.3',
    '172.32.0.1',
    '100.128.0.1',
    '2606:4700::1111',
    '2a00:1450:4001:80b::200e',
    '::ffff:8.8.8.8',
    '64:ff9b::8.8.8.8',
    '2002:808:808::1',
    // Teredo with public server and client (8.8.8.8 inverted is f7f7:f7f7).
    '2001:0:4136:e378:8000:63bf:f7f7:f7f7',
  ];
  for (const address of allowed) {
    it(`allows ${address}`, () => {
      assert.equal(refusedAddressReason(address), undefined);
    });
  }
});

describe('CONNECT authority parsing', () => {
  it('accepts host:port and [v6]:port, and nothing else', () => {
    assert.deepEqual(parseAuthority('Site.Test.:443'), { host: 'site.test', port: 443 });
    assert.deepEqual(parseAuthority('[::1]:8443'), { host: '::1', port: 8443 });
    assert.deepEqual(parseAuthority('10.0.0.1:80'), { host: '10.0.0.1', port: 80 });
    for (const bad of ['site.test', 'site.test:0', 'site.test:70000', '::1:443', '[site.test]:443', 'a b:443', 'http://x:1', 'x:y']) {
      assert.equal(parseAuthority(bad), undefined, bad);
    }
  });
});

// ---------------------------------------------------------------------------------------------------------
// Integration, over the real Unix socket.

interface PlainSite {
  port: number;
  connections(): number;
  close(): Promise<void>;
}

/** Plain HTTP on loopback: /echo streams the request body back, /headers answers the request headers. */
async function startPlainSite(): Promise<PlainSite> {
  let connections = 0;
  const server: Server = createServer((req, res) => {
    if (req.url === '/echo') {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      req.pipe(res);
      return;
    }
    if (req.url?.startsWith('/headers')) {
      res.writeHead(200, { 'content-type': 'application/json', connection: 'keep-alive', 'keep-alive': 'timeout=99', 'x-site': 'plain' });
      res.end(JSON.stringify({ url: req.url, headers: req.headers }));
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
    connections: () => connections,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

interface TestProxy {
  socketPath: string;
  records: EgressRecord[];
  /** Waits until there are at least n records. */
  waitFor(n: number): Promise<void>;
  /** Waits for exactly n records (a little longer, to catch extras) and returns them. */
  settle(n: number): Promise<EgressRecord[]>;
  close(): Promise<void>;
}

let dir = '';
let proxies = 0;

async function startProxy(options: Partial<EgressProxyOptions> & { policy?: () => EgressPolicy }): Promise<TestProxy> {
  const records: EgressRecord[] = [];
  proxies += 1;
  const socketPath = join(dir, `egress-${proxies}.sock`);
  const proxy = await startEgressProxy(socketPath, {
    policy: () => ({ mode: 'open' }),
    ...options,
    onRecord: (r) => records.push(r),
  });
  const waitFor = async (n: number): Promise<void> => {
    const until = Date.now() + 10_000;
    while (records.length < n && Date.now() < until) await sleep(10);
  };
  return {
    socketPath,
    records,
    waitFor,
    settle: async (n) => {
      await waitFor(n);
      await sleep(100);
      assert.equal(records.length, n, `expected exactly ${n} record(s), got ${JSON.stringify(records)}`);
      return records;
    },
    close: () => proxy.close(),
  };
}

/** A resolver from a fixed table that counts its calls per name. */
function tableResolver(table: Record<string, string[]>): { resolve: (host: string) => Promise<string[]>; calls: Map<string, number> } {
  const calls = new Map<string, number>();
  return {
    calls,
    resolve: async (host) => {
      calls.set(host, (calls.get(host) ?? 0) + 1);
      const answer = table[host];
      if (answer === undefined) throw new Error(`getaddrinfo ENOTFOUND ${host}`);
      return answer;
    },
  };
}

interface Tunnel {
  status: number;
  socket: Duplex;
  head: Buffer;
}

function openTunnel(socketPath: string, target: string): Promise<Tunnel> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, method: 'CONNECT', path: target, headers: { host: target } });
    req.once('connect', (res, socket, head) => resolve({ status: res.statusCode ?? 0, socket, head }));
    req.once('error', reject);
    req.end();
  });
}

/** The plain-text body of a refused CONNECT. */
async function refusalText(tunnel: Tunnel): Promise<string> {
  const chunks: Buffer[] = [tunnel.head];
  for await (const chunk of tunnel.socket) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** CONNECT, then TLS over the tunnel with the test CA, then GET path; closes the tunnel afterwards. */
async function fetchThroughTunnel(socketPath: string, host: string, site: TlsSite, path = '/'): Promise<string> {
  const tunnel = await openTunnel(socketPath, `${host}:${site.port}`);
  assert.equal(tunnel.status, 200, await (tunnel.status === 200 ? Promise.resolve('') : refusalText(tunnel)));
  const tls = tlsConnect({ socket: tunnel.socket as never, servername: host, ca: readFileSync(site.caPath) });
  try {
    return await new Promise<string>((resolve, reject) => {
      const req = request({ createConnection: () => tls, path, headers: { host } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end();
    });
  } finally {
    tls.destroy();
    tunnel.socket.destroy();
  }
}

interface PlainResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** A request to the proxy with the given target (absolute-form or not), as curl -x would send it. */
function requestThrough(
  socketPath: string,
  method: string,
  target: string,
  headers: Record<string, string> = {},
  body?: Buffer,
): Promise<PlainResponse> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, method, path: target, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('egress proxy over its Unix socket', { timeout: 60_000 }, () => {
  let site: TlsSite;
  let plain: PlainSite;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pincer-egress-'));
    site = await startTlsSite();
    plain = await startPlainSite();
  });

  after(async () => {
    await site.close();
    await plain.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses a name that resolves to loopback', async () => {
    const dns = tableResolver({ 'site.test': ['127.0.0.1'] });
    const proxy = await startProxy({ resolve: dns.resolve });
    const before = site.connections();
    try {
      const tunnel = await openTunnel(proxy.socketPath, `site.test:${site.port}`);
      assert.equal(tunnel.status, 403);
      assert.equal(await refusalText(tunnel), `pincer egress: refused site.test:${site.port}: 127.0.0.1 is a loopback address\n`);
      const [record] = await proxy.settle(1);
      assert.equal(record?.allowed, false);
      assert.equal(record?.method, 'CONNECT');
      assert.equal(record?.host, 'site.test');
      assert.equal(record?.port, site.port);
      assert.match(record?.reason ?? '', /loopback/);
      assert.equal(record?.bytesUp, 0);
      assert.equal(record?.bytesDown, 0);
      assert.equal(site.connections(), before);
    } finally {
      await proxy.close();
    }
  });

  it('tunnels HTTPS to an allowed address and counts the bytes', async () => {
    const dns = tableResolver({ 'site.test': ['127.0.0.1'] });
    const proxy = await startProxy({ resolve: dns.resolve, allowAddress: LOOPBACK_ONLY });
    try {
      assert.equal(await fetchThroughTunnel(proxy.socketPath, 'site.test', site), SITE_BODY);
      const [record] = await proxy.settle(1);
      assert.equal(record?.allowed, true);
      assert.equal(record?.reason, undefined);
      assert.equal(record?.address, '127.0.0.1');
      assert.equal(record?.host, 'site.test');
      assert.ok((record?.bytesUp ?? 0) > 100, `bytesUp ${record?.bytesUp}`);
      assert.ok((record?.bytesDown ?? 0) > SITE_BODY.length, `bytesDown ${record?.bytesDown}`);
      assert.ok((record?.durationMs ?? -1) >= 0);
      assert.equal(dns.calls.get('site.test'), 1);
    } finally {
      await proxy.close();
    }
  });

  it('refuses the cloud metadata address, as an IP literal and through a name, for CONNECT and plain HTTP', async () => {
    const dns = tableResolver({ 'metadata.test': ['169.254.169.254'] });
    const proxy = await startProxy({ resolve: dns.resolve, allowAddress: LOOPBACK_ONLY });
    try {
      const literal = await openTunnel(proxy.socketPath, '169.254.169.254:80');
      assert.equal(literal.status, 403);
      assert.match(await refusalText(literal), /^pincer egress: refused 169\.254\.169\.254:80: .*link-local.*metadata/);
      const named = await openTunnel(proxy.socketPath, 'metadata.test:80');
      assert.equal(named.status, 403);
      assert.match(await refusalText(named), /169\.254\.169\.254 is a link-local address/);
      const plainHttp = await requestThrough(proxy.socketPath, 'GET', 'http://169.254.169.254/latest/meta-data/');
      assert.equal(plainHttp.status, 403);
      assert.match(plainHttp.body.toString(), /metadata/);
      const records = await proxy.settle(3);
      assert.ok(records.every((r) => !r.allowed && /metadata/.test(r.reason ?? '')));
      assert.deepEqual(
        records.map((r) => r.method),
        ['CONNECT', 'CONNECT', 'GET'],
      );
      // An IP literal is judged as it is: no resolution.
      assert.deepEqual([...dns.calls.keys()], ['metadata.test']);
    } finally {
      await proxy.close();
    }
  });

  it('refuses IPv6 and IPv4-mapped literals of loopback and metadata', async () => {
    const proxy = await startProxy({ allowAddress: LOOPBACK_ONLY });
    try {
      for (const [target, pattern] of [
        [`[::1]:${site.port}`, /::1 is a loopback address/],
        [`[::ffff:127.0.0.1]:${site.port}`, /loopback/],
        ['[fd00:ec2::254]:80', /AWS metadata/],
      ] as const) {
        const tunnel = await openTunnel(proxy.socketPath, target);
        assert.equal(tunnel.status, 403, target);
        assert.match(await refusalText(tunnel), pattern);
      }
      await proxy.settle(3);
    } finally {
      await proxy.close();
    }
  });

  it('drops refused answers and connects to the allowed one', async () => {
    const dns = tableResolver({ 'site.test': ['10.0.0.1', '127.0.0.1'] });
    const proxy = await startProxy({ resolve: dns.resolve, allowAddress: LOOPBACK_ONLY });
    try {
      assert.equal(await fetchThroughTunnel(proxy.socketPath, 'site.test', site), SITE_BODY);
      const [record] = await proxy.settle(1);
      assert.equal(record?.allowed, true);
      assert.equal(record?.address, '127.0.0.1');
    } finally {
      await proxy.close();
    }
  });

  it('refuses with the first reason when every answer is refused', async () => {
    const dns = tableResolver({ 'site.test': ['10.0.0.1', '192.168.0.1'] });
    const proxy = await startProxy({ resolve: dns.resolve });
    try {
      const tunnel = await openTunnel(proxy.socketPath, 'site.test:443');
      assert.equal(tunnel.status, 403);
      assert.match(await refusalText(tunnel), /refused site\.test:443: 10\.0\.0\.1 is a private address/);
      await proxy.settle(1);
    } finally {
      await proxy.close();
    }
  });

  it('connects to the address it checked, whatever a second resolution would say (DNS rebinding)', async () => {
    let calls = 0;
    const resolve = async (): Promise<string[]> => {
      calls += 1;
      return calls === 1 ? ['203.0.113.1'] : ['127.0.0.1'];
    };
    // Only the first answer passes; were the proxy to resolve again to connect, it would reach the loopback site.
    const proxy = await startProxy({ resolve, allowAddress: (a) => a === '203.0.113.1', connectTimeoutMs: 500 });
    const before = site.connections();
    try {
      const tunnel = await openTunnel(proxy.socketPath, `site.test:${site.port}`);
      assert.ok(tunnel.status === 502 || tunnel.status === 504, `status ${tunnel.status}`);
      assert.match(await refusalText(tunnel), /203\.0\.113\.1/);
      const [record] = await proxy.settle(1);
      assert.equal(record?.allowed, true);
      assert.equal(record?.address, '203.0.113.1');
      assert.ok(record?.reason);
      assert.equal(calls, 1);
      assert.equal(site.connections(), before);
    } finally {
      await proxy.close();
    }
  });

  it('under an allowlist, allows the listed domain and its subdomains and nothing else, before any DNS', async () => {
    const dns = tableResolver({ 'site.test': ['127.0.0.1'], 'a.site.test': ['127.0.0.1'], 'other.test': ['127.0.0.1'] });
    const proxy = await startProxy({
      resolve: dns.resolve,
      allowAddress: LOOPBACK_ONLY,
      policy: () => ({ mode: 'allowlist', domains: ['site.test'] }),
    });
    try {
      assert.equal(await fetchThroughTunnel(proxy.socketPath, 'site.test', site), SITE_BODY);
      await proxy.waitFor(1);
      assert.equal(await fetchThroughTunnel(proxy.socketPath, 'a.site.test', site), SITE_BODY);
      await proxy.waitFor(2);
      const other = await openTunnel(proxy.socketPath, `other.test:${site.port}`);
      assert.equal(other.status, 403);
      assert.equal(
        await refusalText(other),
        `pincer egress: refused other.test:${site.port}: other.test is not allowed by egress policy allowlist: site.test\n`,
      );
      const plainOther = await requestThrough(proxy.socketPath, 'GET', `http://other.test:${plain.port}/headers`);
      assert.equal(plainOther.status, 403);
      const records = await proxy.settle(4);
      assert.deepEqual(
        records.map((r) => [r.host, r.allowed]),
        [
          ['site.test', true],
          ['a.site.test', true],
          ['other.test', false],
          ['other.test', false],
        ],
      );
      assert.equal(dns.calls.get('other.test'), undefined);
    } finally {
      await proxy.close();
    }
  });

  it('under none, refuses everything without resolving', async () => {
    const dns = tableResolver({ 'site.test': ['127.0.0.1'] });
    const proxy = await startProxy({ resolve: dns.resolve, allowAddress: LOOPBACK_ONLY, policy: () => ({ mode: 'none' }) });
    try {
      const tunnel = await openTunnel(proxy.socketPath, `site.test:${site.port}`);
      assert.equal(tunnel.status, 403);
      assert.equal(await refusalText(tunnel), `pincer egress: refused site.test:${site.port}: egress policy is none\n`);
      const literal = await openTunnel(proxy.socketPath, '8.8.8.8:443');
      assert.equal(literal.status, 403);
      const plainHttp = await requestThrough(proxy.socketPath, 'GET', `http://site.test:${plain.port}/headers`);
      assert.equal(plainHttp.status, 403);
      assert.equal(plainHttp.body.toString(), `pincer egress: refused site.test:${plain.port}: egress policy is none\n`);
      const records = await proxy.settle(3);
      assert.ok(records.every((r) => !r.allowed && r.reason === 'egress policy is none'));
      assert.equal(dns.calls.size, 0);
    } finally {
      await proxy.close();
    }
  });

  it('reads the policy afresh for each connection', async () => {
    let policy: EgressPolicy = { mode: 'open' };
    const dns = tableResolver({ 'site.test': ['127.0.0.1'] });
    const proxy = await startProxy({ resolve: dns.resolve, allowAddress: LOOPBACK_ONLY, policy: () => policy });
    try {
      assert.equal(await fetchThroughTunnel(proxy.socketPath, 'site.test', site), SITE_BODY);
      await proxy.waitFor(1);
      policy = { mode: 'none' };
      const tunnel = await openTunnel(proxy.socketPath, `site.test:${site.port}`);
      assert.equal(tunnel.status, 403);
      await refusalText(tunnel);
      const records = await proxy.settle(2);
      assert.deepEqual(
        records.map((r) => r.allowed),
        [true, false],
      );
    } finally {
      await proxy.close();
    }
  });

  it('forwards absolute-form plain HTTP with the Host of the target, without hop-by-hop or proxy headers', async () => {
    const dns = tableResolver({ 'site.test': ['127.0.0.1'] });
    const proxy = await startProxy({ resolve: dns.resolve, allowAddress: LOOPBACK_ONLY });
    try {
      const res = await requestThrough(proxy.socketPath, 'GET', `http://site.test:${plain.port}/headers?q=1`, {
        host: `site.test:${plain.port}`,
        'proxy-authorization': 'Basic c2VjcmV0',
        'proxy-connection': 'keep-alive',
        connection: 'keep-alive, x-hop',
        'x-hop': 'hop only',
        'x-end': 'kept',
      });
      assert.equal(res.status, 200);
      const seen = JSON.parse(res.body.toString()) as { url: string; headers: IncomingHttpHeaders };
      assert.equal(seen.url, '/headers?q=1');
      assert.equal(seen.headers.host, `site.test:${plain.port}`);
      assert.equal(seen.headers['x-end'], 'kept');
      for (const name of ['proxy-authorization', 'proxy-connection', 'x-hop', 'authorization', 'x-api-key', 'cookie']) {
        assert.equal(seen.headers[name], undefined, `${name} reached the site`);
      }
      // Hop-by-hop response headers stay on the upstream hop too (the proxy's own server may set its own).
      assert.notEqual(res.headers['keep-alive'], 'timeout=99');
      assert.equal(res.headers['x-site'], 'plain');
      const [record] = await proxy.settle(1);
      assert.equal(record?.allowed, true);
      assert.equal(record?.method, 'GET');
      assert.equal(record?.address, '127.0.0.1');
      assert.equal(record?.bytesDown, res.body.length);
    } finally {
      await proxy.close();
    }
  });

  it('streams a 5 MB body both ways without waiting for either end', async () => {
    const dns = tableResolver({ 'site.test': ['127.0.0.1'] });
    const proxy = await startProxy({ resolve: dns.resolve, allowAddress: LOOPBACK_ONLY });
    const body = randomBytes(5 * 1024 * 1024);
    const chunk = 256 * 1024;
    try {
      const received = await new Promise<Buffer>((resolve, reject) => {
        const req = request({
          socketPath: proxy.socketPath,
          method: 'POST',
          path: `http://site.test:${plain.port}/echo`,
          headers: { host: `site.test:${plain.port}` },
        });
        req.on('error', reject);
        // Only the first chunk goes before the echo starts coming back: a proxy that buffered either body would hang here.
        req.write(body.subarray(0, chunk));
        req.once('response', (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve(Buffer.concat(chunks)));
          res.on('error', reject);
          (async () => {
            for (let at = chunk; at < body.length; at += chunk) {
              if (!req.write(body.subarray(at, at + chunk))) await new Promise((r) => req.once('drain', r));
            }
            req.end();
          })().catch(reject);
        });
      });
      assert.equal(received.length, body.length);
      assert.equal(createHash('sha256').update(received).digest('hex'), createHash('sha256').update(body).digest('hex'));
      const [record] = await proxy.settle(1);
      assert.equal(record?.bytesUp, body.length);
      assert.equal(record?.bytesDown, body.length);
    } finally {
      await proxy.close();
    }
  });

  it('answers 400 to origin-form requests, other schemes and bad CONNECT targets', async () => {
    const proxy = await startProxy({ allowAddress: LOOPBACK_ONLY });
    try {
      const origin = await requestThrough(proxy.socketPath, 'GET', '/index.html', { host: 'site.test' });
      assert.equal(origin.status, 400);
      assert.match(origin.body.toString(), /absolute-form/);
      const https = await requestThrough(proxy.socketPath, 'GET', `https://site.test:${site.port}/`);
      assert.equal(https.status, 400);
      assert.match(https.body.toString(), /CONNECT/);
      const tunnel = await openTunnel(proxy.socketPath, 'site.test');
      assert.equal(tunnel.status, 400);
      assert.match(await refusalText(tunnel), /host:port/);
      const records = await proxy.settle(3);
      assert.ok(records.every((r) => !r.allowed && r.reason !== undefined));
    } finally {
      await proxy.close();
    }
  });

  it('answers 502 when the upstream is unreachable or the name does not resolve', async () => {
    const closed = await startPlainSite();
    const closedPort = closed.port;
    await closed.close();
    const dns = tableResolver({ 'site.test': ['127.0.0.1'] });
    const proxy = await startProxy({ resolve: dns.resolve, allowAddress: LOOPBACK_ONLY });
    try {
      const tunnel = await openTunnel(proxy.socketPath, `site.test:${closedPort}`);
      assert.equal(tunnel.status, 502);
      assert.match(await refusalText(tunnel), /ECONNREFUSED/);
      const plainHttp = await requestThrough(proxy.socketPath, 'GET', `http://site.test:${closedPort}/`);
      assert.equal(plainHttp.status, 502);
      const unknown = await openTunnel(proxy.socketPath, 'nowhere.test:443');
      assert.equal(unknown.status, 502);
      assert.match(await refusalText(unknown), /could not resolve nowhere\.test/);
      const records = await proxy.settle(3);
      assert.deepEqual(
        records.map((r) => r.allowed),
        [true, true, false],
      );
      assert.ok(records.every((r) => r.reason !== undefined));
    } finally {
      await proxy.close();
    }
  });

  it('answers 504 when resolving and connecting take longer than the connect timeout', async () => {
    const proxy = await startProxy({ resolve: () => new Promise<string[]>(() => {}), connectTimeoutMs: 200 });
    try {
      const tunnel = await openTunnel(proxy.socketPath, 'slow.test:443');
      assert.equal(tunnel.status, 504);
      assert.match(await refusalText(tunnel), /timed out resolving slow\.test after 200 ms/);
      const plainHttp = await requestThrough(proxy.socketPath, 'GET', 'http://slow.test/');
      assert.equal(plainHttp.status, 504);
      const records = await proxy.settle(2);
      assert.ok(records.every((r) => !r.allowed && /timed out/.test(r.reason ?? '')));
    } finally {
      await proxy.close();
    }
  });

  it('survives a client that leaves while its destination is being resolved', async () => {
    const resolve = async (): Promise<string[]> => {
      await sleep(200);
      return ['127.0.0.1'];
    };
    const proxy = await startProxy({ resolve, allowAddress: LOOPBACK_ONLY });
    const before = site.connections();
    try {
      const req = request({ socketPath: proxy.socketPath, method: 'CONNECT', path: `site.test:${site.port}` });
      req.on('error', () => {});
      req.end();
      await sleep(50);
      req.destroy();
      const [record] = await proxy.settle(1);
      assert.equal(record?.reason, 'client closed the connection');
      assert.equal(site.connections(), before);
      // Still serving.
      assert.equal(await fetchThroughTunnel(proxy.socketPath, 'site.test', site), SITE_BODY);
    } finally {
      await proxy.close();
    }
  });

  it('ends open tunnels on close, each with its record', async () => {
    const dns = tableResolver({ 'site.test': ['127.0.0.1'] });
    const proxy = await startProxy({ resolve: dns.resolve, allowAddress: LOOPBACK_ONLY });
    const tunnel = await openTunnel(proxy.socketPath, `site.test:${site.port}`);
    assert.equal(tunnel.status, 200);
    const tls = tlsConnect({ socket: tunnel.socket as never, servername: 'site.test', ca: readFileSync(site.caPath) });
    tls.on('error', () => {});
    await new Promise<void>((resolve) => tls.once('secureConnect', () => resolve()));
    const tunnelClosed = new Promise<void>((resolve) => tunnel.socket.once('close', () => resolve()));
    await proxy.close();
    await tunnelClosed;
    const [record] = await proxy.settle(1);
    assert.equal(record?.allowed, true);
    assert.ok((record?.bytesDown ?? 0) > 0);
  });
});
