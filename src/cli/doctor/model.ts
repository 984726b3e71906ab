// The model credential of each provider, proven with a real minimal request through pincer's own model proxy:
// the same path (and the same credential swap, in the provider's own header) an agent's every request takes.
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Config, DEFAULT_PROVIDER, type ModelCredential, type ModelProvider } from '../../config.js';
import { startModelProxy } from '../../proxy/model-proxy.js';
import { type Check, fail, ok, oneLine, since, warn } from './check.js';

/** The model doctor asks when PINCER_MODEL is not set: small and cheap; one output token. */
export const DEFAULT_DOCTOR_MODEL = 'claude-haiku-4-5';
const REQUEST_TIMEOUT_MS = 20_000;

interface Answer {
  status: number;
  body: string;
}

/** POST over the proxy's Unix socket, as the sandbox's bridge would deliver it. */
function post(socketPath: string, path: string, headers: Record<string, string>, body: string, timeoutMs: number): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      { socketPath, path, method: 'POST', headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) } },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          if (text.length < 64 * 1024) text += c;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
        res.on('error', reject);
      },
    );
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer within ${timeoutMs / 1000} s`)));
    req.on('error', reject);
    req.end(body);
  });
}

/** The API's error shape: `{type: 'error', error: {type, message}}`; undefined for anything else (an HTML page, say). */
function apiError(body: string): { type: string; message: string } | undefined {
  try {
    const v = JSON.parse(body) as { type?: unknown; error?: { type?: unknown; message?: unknown } };
    if (v.type === 'error' && typeof v.error?.type === 'string') return { type: v.error.type, message: String(v.error.message ?? '') };
  } catch {
    // not JSON
  }
  return undefined;
}

/** The variables that set a provider up: where the owner fixes what doctor found. */
interface ProviderVariables {
  url: string;
  key: string;
}

function variables(provider: string, credential: ModelCredential): ProviderVariables {
  if (provider === DEFAULT_PROVIDER)
    return { url: 'ANTHROPIC_BASE_URL', key: credential.kind === 'oauth' ? 'CLAUDE_CODE_OAUTH_TOKEN' : 'ANTHROPIC_API_KEY' };
  const prefix = `PINCER_PROVIDER_${provider.toUpperCase()}`;
  return { url: `${prefix}_URL`, key: `${prefix}_KEY and ${prefix}_AUTH` };
}

/** The default provider (checks `model credential` and `model`), then each named one (`model (<name>)`). */
export async function modelChecks(config: Config): Promise<Check[]> {
  const named = [...config.providers.values()].filter((p) => p.name !== DEFAULT_PROVIDER);
  const [own, ...others] = await Promise.all([defaultProviderChecks(config), ...named.map((p) => namedProviderCheck(p, config))]);
  return [...(own ?? []), ...others];
}

/** A named provider always has its credential (of kind none for one that takes none). */
async function namedProviderCheck(p: ModelProvider, config: Config): Promise<Check> {
  const credential = p.credential ?? { kind: 'none' };
  return modelRequest(`model (${p.name})`, p.name, p.baseUrl, p.model ?? config.model ?? DEFAULT_DOCTOR_MODEL, credential);
}

async function defaultProviderChecks(config: Config): Promise<Check[]> {
  const credential = config.credential;
  if (!credential) {
    return [
      fail(
        'model credential',
        'none: pincer starts, but answers every message with how to set one',
        "put ANTHROPIC_API_KEY=sk-ant-… in .env next to package.json (or the environment); a Claude subscription's token from `claude setup-token` goes in CLAUDE_CODE_OAUTH_TOKEN instead",
      ),
    ];
  }
  return [
    ok('model credential', `${variables(DEFAULT_PROVIDER, credential).key} is set (it stays on the host; sandboxes get a placeholder)`),
    await modelRequest('model', DEFAULT_PROVIDER, config.modelBaseUrl, config.model ?? DEFAULT_DOCTOR_MODEL, credential),
  ];
}

async function modelRequest(name: string, provider: string, endpoint: string, model: string, credential: ModelCredential): Promise<Check> {
  const dir = mkdtempSync(join(tmpdir(), 'pincer-doctor-'));
  let upstreamError: string | undefined;
  const proxy = await startModelProxy(join(dir, 'model.sock'), {
    upstream: endpoint,
    credential,
    onError: (err) => {
      upstreamError = oneLine(err);
    },
  });
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'anthropic-version': '2023-06-01',
    // The placeholder a sandbox sends: the proxy drops it and puts the provider's real credential in.
    ...(credential.kind === 'oauth'
      ? { authorization: 'Bearer placeholder', 'anthropic-beta': 'oauth-2025-04-20' }
      : { 'x-api-key': 'placeholder' }),
  };
  const body = JSON.stringify({
    model,
    max_tokens: 1,
    stream: false,
    // A subscription token is for Claude Code: it introduces itself as such.
    ...(credential.kind === 'oauth' ? { system: "You are Claude Code, Anthropic's official CLI for Claude." } : {}),
    messages: [{ role: 'user', content: 'Say ok.' }],
  });
  const started = performance.now();
  try {
    const answer = await post(proxy.socketPath, '/v1/messages', headers, body, REQUEST_TIMEOUT_MS);
    return judge(answer, since(started), { name, provider, model, endpoint, credential, upstreamError });
  } catch (err) {
    return fail(
      name,
      `no answer from ${endpoint} through the proxy: ${oneLine(err)}`,
      `check ${variables(provider, credential).url} (now ${endpoint}) and the network: can this machine reach it? (curl -sI ${endpoint})`,
    );
  } finally {
    await proxy.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

interface Context {
  /** The check's name: `model` for the default provider, `model (<provider>)` for another. */
  name: string;
  provider: string;
  model: string;
  endpoint: string;
  credential: ModelCredential;
  upstreamError: string | undefined;
}

/** 401 / 403, an unreachable or wrong endpoint and an empty account block; a model name or a busy endpoint only warn. */
export function judge(answer: Answer, ms: number, c: Context): Check {
  const { status } = answer;
  const err = apiError(answer.body);
  const said = err ? `${status} ${err.type}: ${oneLine(err.message, 160)}` : `HTTP ${status}`;
  const vars = variables(c.provider, c.credential);
  const name = vars.key;
  const isDefault = c.provider === DEFAULT_PROVIDER;
  if (status >= 200 && status < 300) {
    return ok(c.name, `${c.model} answered in ${ms} ms through pincer's model proxy (${c.endpoint})`, ms);
  }
  if (status === 502 && (c.upstreamError || /pincer proxy could not reach/.test(answer.body))) {
    return fail(
      c.name,
      `cannot reach ${c.endpoint}: ${c.upstreamError ?? err?.message ?? said}`,
      `check ${vars.url} (now ${c.endpoint}) and the network: DNS, firewall, a proxy (curl -sI ${c.endpoint})`,
    );
  }
  if (status === 401) {
    return fail(
      c.name,
      `the key is refused (${said})`,
      !isDefault
        ? `check ${vars.key} (now ${authOf(c.credential)}): the key is mistyped or revoked, or the endpoint expects another header`
        : c.credential.kind === 'api-key'
          ? 'check ANTHROPIC_API_KEY (in .env or the environment): it is mistyped, revoked or of another endpoint; create one at https://console.anthropic.com/settings/keys'
          : 'check CLAUDE_CODE_OAUTH_TOKEN: it is mistyped or expired; make a new one with `claude setup-token`',
    );
  }
  if (status === 403) {
    return fail(
      c.name,
      `the credential may not do this (${said})`,
      `check what ${name} is allowed (its organization and workspace at https://console.anthropic.com)`,
    );
  }
  if (err && /credit balance|billing/i.test(err.message)) {
    return fail(c.name, `the account cannot pay for requests (${said})`, 'add credits at https://console.anthropic.com/settings/billing');
  }
  if (!err && (status === 404 || status === 405)) {
    return fail(
      c.name,
      `${c.endpoint} answered ${said} to POST /v1/messages: it does not look like the Anthropic API`,
      `check ${vars.url} (now ${c.endpoint}): the API's base, without /v1 (e.g. https://api.anthropic.com)`,
    );
  }
  if ((status === 404 || status === 400) && err && /model/i.test(err.message)) {
    return warn(
      c.name,
      `the credential is accepted, but not the model ${c.model} (${said})`,
      !isDefault
        ? `set PINCER_PROVIDER_${c.provider.toUpperCase()}_MODEL to a model this endpoint serves (doctor asked ${c.model})`
        : c.model === DEFAULT_DOCTOR_MODEL
          ? `doctor asked ${DEFAULT_DOCTOR_MODEL}; set PINCER_MODEL to a model this account can use (Claude Code's default is used when unset)`
          : "set PINCER_MODEL to a model this account can use, or unset it for Claude Code's default",
    );
  }
  if (status === 429) {
    return warn(c.name, `the credential is accepted, but rate-limited right now (${said})`, 'wait, or raise the limits of the account');
  }
  if (status >= 500) {
    return warn(
      c.name,
      `the endpoint has trouble (${said}); the credential is not confirmed yet`,
      'try again in a while (https://status.anthropic.com)',
    );
  }
  return warn(c.name, `unexpected answer (${said})`, `check ${vars.url} (now ${c.endpoint}) and ${name}`);
}

function authOf(credential: ModelCredential): string {
  return credential.kind === 'api-key' ? 'x-api-key' : credential.kind === 'none' ? 'none' : 'bearer';
}
