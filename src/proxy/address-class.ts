// Which resolved addresses the egress proxy may connect to: public unicast only. Everything that
// reaches the host itself, its local networks or a cloud metadata service is refused, including
// IPv6 forms that embed such an IPv4 address.

import { isIP } from 'node:net';
import ipaddr from 'ipaddr.js';

type IPv4 = ipaddr.IPv4;
type IPv6 = ipaddr.IPv6;

const V4_DESCRIPTIONS: Record<string, string> = {
  unspecified: 'an unspecified address',
  broadcast: 'a broadcast address',
  multicast: 'a multicast address',
  linkLocal: 'a link-local address',
  loopback: 'a loopback address',
  carrierGradeNat: 'a carrier-grade NAT (shared) address',
  private: 'a private address',
  reserved: 'a reserved address',
};

const V6_DESCRIPTIONS: Record<string, string> = {
  ...V4_DESCRIPTIONS,
  uniqueLocal: 'a unique-local address',
  deprecatedSiteLocal: 'a site-local address',
  discard: 'a discard-only address',
  benchmarking: 'a benchmarking address',
  rfc6052: 'a local-use NAT64 address',
};

const METADATA_V4 = ipaddr.IPv4.parse('169.254.169.254');
/** AWS's IPv6 instance metadata endpoint (inside fc00::/7, named apart for a clearer reason). */
const METADATA_V6 = ipaddr.IPv6.parse('fd00:ec2::254');
const GLOBAL_UNICAST_V6 = ipaddr.IPv6.parseCIDR('2000::/3');
/** RFC 6052 well-known NAT64 prefix; the local-use 64:ff9b:1::/48 (RFC 8215) is left refused. */
const NAT64_WELL_KNOWN = ipaddr.IPv6.parseCIDR('64:ff9b::/96');
/** `::a.b.c.d`, which ipaddr.js reads as IPv4-mapped but the kernel treats as IPv4-compatible. */
const V4_COMPATIBLE_TEXT = /^::\d{1,3}(\.\d{1,3}){3}$/;

/** Why the proxy must not connect to this address, or undefined when it is public unicast. */
export function refusedAddressReason(address: string): string | undefined {
  if (isIP(address) === 0) return `${JSON.stringify(address)} is not an IP address`;
  if (V4_COMPATIBLE_TEXT.test(address)) return `${address} is a deprecated IPv4-compatible IPv6 address`;
  let parsed: IPv4 | IPv6;
  try {
    parsed = ipaddr.parse(address);
  } catch {
    return `${JSON.stringify(address)} is not an IP address`;
  }
  const problem = parsed.kind() === 'ipv4' ? v4Problem(parsed as IPv4) : v6Problem(parsed as IPv6);
  return problem === undefined ? undefined : `${address} is ${problem}`;
}

function v4Problem(addr: IPv4): string | undefined {
  const range = addr.range();
  if (range === 'unicast') return undefined;
  if (addr.match(METADATA_V4, 32)) return 'a link-local address (cloud metadata)';
  return V4_DESCRIPTIONS[range] ?? `a special-purpose address (${range})`;
}

function v6Problem(addr: IPv6): string | undefined {
  // Zones only make sense for link-local destinations.
  if (addr.zoneId !== undefined) return 'a scoped (zoned) address';
  if (addr.match(METADATA_V6, 128)) return 'a unique-local address (AWS metadata)';
  const range = addr.range();
  const embedded = embeddedV4(addr, range);
  if (embedded !== undefined) {
    // Translation and tunnel forms reach whatever IPv4 address they carry: judge that instead.
    for (const [label, v4] of embedded) {
      const problem = v4Problem(v4);
      if (problem !== undefined) return `${problem} (${label} ${v4.toString()})`;
    }
    return undefined;
  }
  if (range !== 'unicast') return V6_DESCRIPTIONS[range] ?? `a special-purpose address (${range})`;
  if (!addr.match(GLOBAL_UNICAST_V6)) return 'not a global unicast IPv6 address';
  return undefined;
}

/** The IPv4 addresses an IPv6 address embeds, labelled; undefined for forms that embed none. */
function embeddedV4(addr: IPv6, range: string): Array<[string, IPv4]> | undefined {
  const p = addr.parts;
  const v4 = (hi: number | undefined, lo: number | undefined): IPv4 =>
    new ipaddr.IPv4([((hi ?? 0) >> 8) & 0xff, (hi ?? 0) & 0xff, ((lo ?? 0) >> 8) & 0xff, (lo ?? 0) & 0xff]);
  switch (range) {
    case 'ipv4Mapped':
      return [['IPv4-mapped', v4(p[6], p[7])]];
    case 'rfc6145':
      return [['IPv4-translated', v4(p[6], p[7])]];
    case 'rfc6052':
      // Only the well-known /96 has a fixed place for the IPv4 address; the local-use prefix stays refused.
      return addr.match(NAT64_WELL_KNOWN) ? [['NAT64', v4(p[6], p[7])]] : undefined;
    case '6to4':
      return [['6to4', v4(p[1], p[2])]];
    case 'teredo':
      // Teredo carries the relay server in bits 32-63 and the client, bit-inverted, in the last 32.
      return [
        ['Teredo server', v4(p[2], p[3])],
        ['Teredo client', v4(~(p[6] ?? 0) & 0xffff, ~(p[7] ?? 0) & 0xffff)],
      ];
    default:
      return undefined;
  }
}
