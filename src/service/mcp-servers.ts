// Extra MCP servers a group's agent gets besides pincer's own tools (a Gmail or calendar server the owner
// installs). A stdio server runs inside the group's sandbox, so its env (its secrets) is inside too: the one
// documented exception. An http server without secrets is reached by Claude Code directly, through the
// egress proxy under the group's policy. An http server with secret headers is reached through a host-side
// bridge (src/proxy/mcp-bridge.ts) that adds them: the sandbox gets only a stdio pipe to the bridge.
import { lstatSync, realpathSync, statSync } from 'node:fs';
import { join, posix } from 'node:path';
import type { McpServerConfig } from '@anthropic-ai/claude-agent-sdk';
import type { z } from 'zod';
import { SANDBOX_GROUP_DIR, type SandboxPlan } from '../agent/sandbox-spawn.js';
import type { Logger } from '../log.js';
import { type McpBridge, startMcpBridge } from '../proxy/mcp-bridge.js';
import { canChangeOwners } from '../sandbox/access.js';
import { forwardDir } from '../sandbox/bridge.js';
import type { HttpMcpServer, McpServer, StdioMcpServer } from '../store/mcp-server-schema.js';

/** How a secret value is shown; given back in a change, it keeps the stored value. */
export const SECRET_MASK = '********';

/**
 * Host paths the bwrap sandbox mounts read-only as they are (src/sandbox/bwrap.ts: `/usr` and the root
 * links into it). Anything else of the host is absent inside, so a command there could never start.
 */
export const VISIBLE_HOST_ROOTS = ['/usr', '/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32'];

/** How a server is reached: run inside the sandbox, connected to directly, or through the host's bridge. */
export type McpRoute = 'sandbox' | 'direct' | 'host-bridge';

/** A server as listings show it: every secret value masked. */
export type McpServerView =
  | (Omit<StdioMcpServer, 'env'> & { env: Record<string, string>; route: McpRoute })
  | (Omit<HttpMcpServer, 'secretHeaders' | 'headers'> & {
      headers: Record<string, string>;
      secretHeaders: Record<string, string>;
      route: McpRoute;
    });

const mask = (values: Record<string, string> | undefined): Record<string, string> =>
  Object.fromEntries(Object.keys(values ?? {}).map((k) => [k, SECRET_MASK]));

export function routeOf(s: McpServer): McpRoute {
  if (s.type === 'stdio') return 'sandbox';
  return Object.keys(s.secretHeaders ?? {}).length > 0 ? 'host-bridge' : 'direct';
}

/** Names, commands and URLs as they are; env values and secret headers never. */
export function maskServers(servers: McpServer[]): McpServerView[] {
  return servers.map((s) =>
    s.type === 'stdio'
      ? { name: s.name, type: s.type, command: s.command, args: s.args ?? [], env: mask(s.env), route: routeOf(s) }
      : { name: s.name, type: s.type, url: s.url, headers: s.headers ?? {}, secretHeaders: mask(s.secretHeaders), route: routeOf(s) },
  );
}

/** A listing sent back as it is: `route` says how a server is reached and is not part of the server. */
export function withoutViewFields(input: unknown): unknown {
  if (!Array.isArray(input)) return input;
  return input.map((s) => {
    if (typeof s !== 'object' || s === null || Array.isArray(s)) return s;
    const { route: _route, ...server } = s as Record<string, unknown>;
    return server;
  });
}

/** Zod's issues as one line that names the server (by name where it has one) and the field. */
export function describeIssues(error: z.ZodError, input: unknown): string {
  return error.issues
    .map((issue) => {
      const [index, ...rest] = issue.path;
      const named = Array.isArray(input) && typeof index === 'number' ? (input[index] as { name?: unknown } | undefined)?.name : undefined;
      const server = index === undefined ? 'servers' : typeof named === 'string' && named ? `server "${named}"` : `server ${String(index)}`;
      return `${[server, ...rest.map(String)].join(': ')}: ${issue.message}`;
    })
    .join('; ');
}

/**
 * A masked value given back keeps what is stored under the same server name and key, so a listing can be
 * edited and sent again without knowing (or exposing) the secrets in it.
 */
export function keepMaskedSecrets(next: McpServer[], current: McpServer[]): { servers: McpServer[]; problems: string[] } {
  const problems: string[] = [];
  const keep = (server: string, field: string, values: Record<string, string> | undefined, stored: Record<string, string> | undefined) => {
    if (!values) return values;
    return Object.fromEntries(
      Object.entries(values).map(([k, v]) => {
        if (v !== SECRET_MASK) return [k, v];
        const old = stored?.[k];
        if (old === undefined)
          problems.push(`server "${server}": ${field}: ${k}: "${SECRET_MASK}" keeps a stored value, but there is none`);
        return [k, old ?? v];
      }),
    );
  };
  const servers = next.map((s): McpServer => {
    const old = current.find((c) => c.name === s.name && c.type === s.type);
    if (s.type === 'stdio') {
      const env = keep(s.name, 'env', s.env, old?.type === 'stdio' ? old.env : undefined);
      return env === undefined ? s : { ...s, env };
    }
    const secretHeaders = keep(s.name, 'secretHeaders', s.secretHeaders, old?.type === 'http' ? old.secretHeaders : undefined);
    return secretHeaders === undefined ? s : { ...s, secretHeaders };
  });
  return { servers, problems };
}

/** Why a stdio command could not start in the group's sandbox, or undefined when it can. */
export function commandProblem(command: string, groupDir: string): string | undefined {
  if (command.startsWith(`${SANDBOX_GROUP_DIR}/`)) return groupCommandProblem(command, groupDir);
  const root = VISIBLE_HOST_ROOTS.find((r) => command.startsWith(`${r}/`));
  if (!root) {
    return `${command} is not visible in the sandbox: use a program under ${VISIBLE_HOST_ROOTS.slice(0, 3).join(', ')} of the host, or one in the group folder (${SANDBOX_GROUP_DIR}/…)`;
  }
  let real: string;
  try {
    real = realpathSync(command);
  } catch {
    return `${command} does not exist on this host`;
  }
  if (!VISIBLE_HOST_ROOTS.some((r) => real.startsWith(`${r}/`))) return `${command} leads to ${real}, which the sandbox does not see`;
  return executableProblem(command, real);
}

/** Inside the group folder, walked without following any link: the agent may have planted one. */
function groupCommandProblem(command: string, groupDir: string): string | undefined {
  const segments = command.slice(SANDBOX_GROUP_DIR.length + 1).split('/');
  if (segments.some((s) => s === '')) return `${command} is not a file path`;
  let path = groupDir;
  for (const [i, segment] of segments.entries()) {
    path = join(path, segment);
    let st: ReturnType<typeof lstatSync>;
    try {
      st = lstatSync(path);
    } catch {
      return `${command} does not exist in the group folder (put it there first)`;
    }
    if (st.isSymbolicLink()) return `${posix.join(SANDBOX_GROUP_DIR, ...segments.slice(0, i + 1))} is a link: give the real path`;
    if (i < segments.length - 1 && !st.isDirectory()) return `${command} is not a file path`;
  }
  return executableProblem(command, path);
}

function executableProblem(shown: string, path: string): string | undefined {
  const st = statSync(path);
  if (!st.isFile()) return `${shown} is not a file`;
  if ((st.mode & 0o111) === 0) return `${shown} is not executable (run scripts through their interpreter, e.g. /usr/bin/node)`;
  return undefined;
}

/** Host-side problems of each server (a stdio command that could not start), or none. */
export function mcpServerProblems(servers: McpServer[], groupDir: string): Array<{ name: string; reason: string }> {
  const problems: Array<{ name: string; reason: string }> = [];
  for (const s of servers) {
    if (s.type !== 'stdio') continue;
    const reason = commandProblem(s.command, groupDir);
    if (reason) problems.push({ name: s.name, reason });
  }
  return problems;
}

/** One session's extra servers, as Claude Code is given them, and the bridges that serve them. */
export interface SessionMcpServers {
  servers: Record<string, McpServerConfig>;
  /** Stops the session's bridges; called when the session ends. */
  close(): Promise<void>;
}

/**
 * Maps a group's servers for one session. A server whose command no longer starts is left out and logged
 * (the agent runs without it); a secret-carrying http server gets its bridge, listening in the session's
 * socket folder, which every forward already mounts read-only inside (src/sandbox/bridge.ts).
 */
export function sessionMcpServers(servers: McpServer[], plan: SandboxPlan, log: Logger): SessionMcpServers {
  const out: Record<string, McpServerConfig> = {};
  const bridges: McpBridge[] = [];
  const socketDir = join(plan.modelSocket, '..');
  servers.forEach((s, i) => {
    if (s.type === 'stdio') {
      const reason = commandProblem(s.command, plan.groupDir);
      if (reason) {
        log.warn({ server: s.name, reason }, 'MCP server left out of the session');
        return;
      }
      out[s.name] = { type: 'stdio', command: s.command, args: s.args ?? [], env: s.env ?? {}, alwaysLoad: true };
      return;
    }
    if (routeOf(s) === 'direct') {
      out[s.name] = { type: 'http', url: s.url, headers: s.headers ?? {}, alwaysLoad: true };
      return;
    }
    // Short on purpose: a Unix socket path has at most 108 bytes (see MAX_RUN_DIR in layout.ts).
    const socket = `mcp-${i}.sock`;
    bridges.push(
      startMcpBridge(join(socketDir, socket), {
        url: s.url,
        headers: { ...s.headers, ...s.secretHeaders },
        owner: canChangeOwners() ? plan.user : undefined,
        onError: (reason) => log.warn({ server: s.name, reason }, 'MCP bridge: upstream failed'),
      }),
    );
    out[s.name] = { type: 'stdio', command: 'socat', args: ['STDIO', `UNIX-CONNECT:${forwardDir(0)}/${socket}`], alwaysLoad: true };
  });
  return { servers: out, close: async () => void (await Promise.all(bridges.map((b) => b.close()))) };
}
