// A group's egress policy: which host names its sandbox may reach through the egress proxy. The
// address rules (no loopback, private or metadata addresses) apply on top of every mode.

import { z } from 'zod';

export type EgressPolicy = { mode: 'open' } | { mode: 'allowlist'; domains: string[] } | { mode: 'none' };

const LABEL = /^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$/;

/** A lowercase DNS name: dot-separated labels of letters, digits, '-' and '_', at most 253 characters. */
export function isHostName(name: string): boolean {
  return name.length > 0 && name.length <= 253 && name.split('.').every((l) => LABEL.test(l));
}

/** What is wrong with a (normalized) allowlist entry, or undefined when it is a plain host name. */
function domainProblem(domain: string): string | undefined {
  if (domain.includes('://')) return 'a domain has no scheme (write github.com, not https://github.com)';
  if (domain.includes('*')) return 'no wildcards: a listed domain already covers its subdomains';
  if (domain.includes(':')) return 'a domain has no port: every port is allowed';
  if (domain.includes('/')) return 'a domain has no path';
  if (!isHostName(domain)) return 'not a valid host name';
  return undefined;
}

const domainSchema = z
  .string()
  .trim()
  .toLowerCase()
  .overwrite((d) => d.replace(/\.$/, ''))
  .superRefine((d, ctx) => {
    const problem = domainProblem(d);
    if (problem !== undefined) ctx.addIssue({ code: 'custom', message: `${JSON.stringify(d)}: ${problem}` });
  });

export const egressPolicySchema = z.discriminatedUnion('mode', [
  z.object({ mode: z.literal('open') }),
  z.object({ mode: z.literal('allowlist'), domains: z.array(domainSchema) }),
  z.object({ mode: z.literal('none') }),
]) satisfies z.ZodType<EgressPolicy>;

/** Case-insensitive, one trailing dot ignored: the forms under which a name still means the same host. */
function normalizeHost(host: string): string {
  return host.trim().toLowerCase().replace(/\.$/, '');
}

export function describePolicy(policy: EgressPolicy): string {
  if (policy.mode !== 'allowlist') return policy.mode;
  return `allowlist: ${policy.domains.length > 0 ? policy.domains.join(', ') : '(empty)'}`;
}

/** Whether the policy lets a connection to this host name (or IP literal) proceed to resolution. */
export function hostAllowedByPolicy(host: string, policy: EgressPolicy): { ok: true } | { ok: false; reason: string } {
  if (policy.mode === 'none') return { ok: false, reason: 'egress policy is none' };
  if (policy.mode === 'open') return { ok: true };
  const name = normalizeHost(host);
  const listed = policy.domains.some((d) => {
    const domain = normalizeHost(d);
    return domain.length > 0 && (name === domain || name.endsWith(`.${domain}`));
  });
  if (listed) return { ok: true };
  return { ok: false, reason: `${name || '(empty host)'} is not allowed by egress policy ${describePolicy(policy)}` };
}
