// The shape of a group's extra MCP servers as the store keeps them and every change must pass. Here, below
// the store, so that the store needs nothing of the services that run the servers (src/service/mcp-servers.ts).
import { z } from 'zod';

/** The name of pincer's own tool server in every session; no extra server may take it. */
export const TOOL_SERVER_NAME = 'pincer';

export const MAX_MCP_SERVERS = 10;

/** Set by the bridge or by HTTP itself: a configured header must not replace them. */
const RESERVED_HEADERS = new Set([
  'host',
  'content-length',
  'content-type',
  'accept',
  'connection',
  'keep-alive',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'mcp-session-id',
  'mcp-protocol-version',
]);

const noNul = (s: string) => !s.includes('\0');

const serverName = z
  .string()
  .regex(/^[a-z0-9_-]{1,32}$/, 'must be 1 to 32 characters of a-z, 0-9, _ and -')
  .refine((n) => n !== TOOL_SERVER_NAME, `"${TOOL_SERVER_NAME}" is the name of pincer's own tools`);

const envNameProblem = (k: string) => (/^[A-Za-z_][A-Za-z0-9_]{0,127}$/.test(k) ? undefined : 'must be a variable name such as API_TOKEN');
const headerNameProblem = (k: string) => {
  if (!/^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$/.test(k)) return 'must be an HTTP header name';
  return RESERVED_HEADERS.has(k.toLowerCase()) ? 'is set by HTTP or the bridge itself' : undefined;
};
const envValue = z.string().max(8192).refine(noNul, 'must not contain a NUL byte');
const headerValue = z
  .string()
  .max(8192)
  .refine((v) => !/[\0\r\n]/.test(v), 'must be one line');

/** A map of names to values; each bad name is named in the refusal (zod's own key check says only "invalid key"). */
const namedValues = (nameProblem: (name: string) => string | undefined, value: z.ZodType<string>, max: number) =>
  z.record(z.string(), value).superRefine((values, ctx) => {
    const names = Object.keys(values);
    if (names.length > max) ctx.addIssue({ code: 'custom', message: `at most ${max} entries` });
    for (const name of names) {
      const problem = nameProblem(name);
      if (problem) ctx.addIssue({ code: 'custom', path: [name], message: problem });
    }
  });

/** Why a URL cannot name an MCP server, or undefined. */
function urlProblem(raw: string): string | undefined {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return 'must be an absolute http:// or https:// URL';
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return 'must be an http:// or https:// URL';
  if (url.username || url.password) return 'must not carry a user or password: give them as a secret header';
  if (!url.hostname) return 'must name a host';
  return undefined;
}

const stdioServerSchema = z.strictObject({
  name: serverName,
  type: z.literal('stdio'),
  command: z
    .string()
    .min(1)
    .max(4096)
    .refine((c) => c.startsWith('/'), 'must be an absolute path')
    .refine((c) => noNul(c) && !c.split('/').some((s) => s === '..' || s === '.'), 'must not contain "." or ".." segments or NUL'),
  args: z.array(z.string().max(4096).refine(noNul, 'must not contain a NUL byte')).max(64).optional(),
  env: namedValues(envNameProblem, envValue, 64).optional(),
});

const httpServerSchema = z
  .strictObject({
    name: serverName,
    type: z.literal('http'),
    url: z
      .string()
      .max(2048)
      .superRefine((u, ctx) => {
        const problem = urlProblem(u);
        if (problem) ctx.addIssue({ code: 'custom', message: problem });
      }),
    headers: namedValues(headerNameProblem, headerValue, 32).optional(),
    secretHeaders: namedValues(headerNameProblem, headerValue, 32).optional(),
  })
  .superRefine((s, ctx) => {
    const plain = new Set(Object.keys(s.headers ?? {}).map((h) => h.toLowerCase()));
    for (const h of Object.keys(s.secretHeaders ?? {}))
      if (plain.has(h.toLowerCase())) ctx.addIssue({ code: 'custom', path: ['secretHeaders', h], message: 'is also a plain header' });
  });

export const mcpServerSchema = z.discriminatedUnion('type', [stdioServerSchema, httpServerSchema]);

/** What the store keeps and every change must pass: the structure; whether a command exists is checked by `mcpServerProblems`. */
export const mcpServersSchema = z
  .array(mcpServerSchema)
  .max(MAX_MCP_SERVERS, `at most ${MAX_MCP_SERVERS} servers`)
  .superRefine((servers, ctx) => {
    const seen = new Set<string>();
    servers.forEach((s, i) => {
      if (seen.has(s.name)) ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `"${s.name}" is named twice` });
      seen.add(s.name);
    });
  });

export type McpServer = z.infer<typeof mcpServerSchema>;
export type StdioMcpServer = z.infer<typeof stdioServerSchema>;
export type HttpMcpServer = z.infer<typeof httpServerSchema>;
