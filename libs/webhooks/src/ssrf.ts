import { BlockList, isIP } from 'node:net';

/**
 * Where a webhook may connect, pure (no DNS, no I/O): the connect-time check (a custom
 * `lookup` on the HTTP agent in `webhook-http.ts`, so DNS rebinding and redirects can't
 * slip past a check made only when the webhook was created) calls {@link checkAddress} on
 * every resolved address. Hostnames are normalised by the WHATWG URL parser first, which turns the
 * numeric spellings of IPv4 (`127.1`, `2130706433`, `0x7f.1`, `0177.0.0.1`) into dotted
 * quads.
 */
export type AddressClass =
  | 'public'
  | 'metadata'
  | 'loopback'
  | 'private'
  | 'cgnat'
  | 'unique-local'
  | 'link-local'
  | 'multicast'
  | 'unspecified'
  | 'reserved';

/**
 * Cloud instance metadata services (and the like) outside link-local: each sits in a range
 * WEBHOOK_ALLOW_PRIVATE_NETWORKS opens (unique-local, CGNAT) or in public space, and each
 * hands out credentials. Checked first, and refused under every flag: with the 2 KiB
 * response excerpt a tenant sees, a webhook to one would be a readable SSRF.
 */
const METADATA: Array<['ipv4' | 'ipv6', string, number]> = [
  ['ipv6', 'fd00:ec2::254', 128], // AWS IMDS over IPv6
  ['ipv6', 'fd00:ec2::23', 128], // AWS Time Sync / DNS (Nitro)
  ['ipv6', 'fd20:ce::254', 128], // Google Cloud metadata over IPv6
  ['ipv4', '100.100.100.200', 32], // Alibaba Cloud metadata
  ['ipv4', '168.63.129.16', 32], // Azure WireServer (public space)
  // Inside link-local (refused anyway), named so the refusal says what they are: the
  // metadata service of AWS, Azure, GCP, Oracle, DigitalOcean and OpenStack, AWS DNS and
  // time sync, the ECS task metadata endpoint.
  ['ipv4', '169.254.169.254', 32],
  ['ipv4', '169.254.169.253', 32],
  ['ipv4', '169.254.169.123', 32],
  ['ipv4', '169.254.170.2', 32],
  ['ipv6', 'fe80::a9fe:a9fe', 128], // 169.254.169.254 as an IPv6 link-local alias
  ['ipv4', '192.0.0.192', 32], // Oracle Cloud (older) metadata
];

const RANGES: Array<[AddressClass, 'ipv4' | 'ipv6', string, number]> = [
  ...METADATA.map(
    ([family, network, prefix]) =>
      ['metadata', family, network, prefix] as [AddressClass, 'ipv4' | 'ipv6', string, number],
  ),
  ['unspecified', 'ipv4', '0.0.0.0', 8],
  ['loopback', 'ipv4', '127.0.0.0', 8],
  ['private', 'ipv4', '10.0.0.0', 8],
  ['private', 'ipv4', '172.16.0.0', 12],
  ['private', 'ipv4', '192.168.0.0', 16],
  ['cgnat', 'ipv4', '100.64.0.0', 10],
  ['link-local', 'ipv4', '169.254.0.0', 16],
  ['multicast', 'ipv4', '224.0.0.0', 4],
  ['reserved', 'ipv4', '240.0.0.0', 4],
  ['reserved', 'ipv4', '192.0.0.0', 24],
  ['reserved', 'ipv4', '198.18.0.0', 15],
  // Documentation (RFC 5737, RFC 3849): never a subscriber, yet some networks number their
  // own hosts from them, and then a webhook would reach the worker's host.
  ['reserved', 'ipv4', '192.0.2.0', 24],
  ['reserved', 'ipv4', '198.51.100.0', 24],
  ['reserved', 'ipv4', '203.0.113.0', 24],
  ['unspecified', 'ipv6', '::', 128],
  ['loopback', 'ipv6', '::1', 128],
  ['unique-local', 'ipv6', 'fc00::', 7],
  ['link-local', 'ipv6', 'fe80::', 10],
  ['multicast', 'ipv6', 'ff00::', 8],
  // Local-use NAT64 (RFC 8215) and Teredo (its IPv4 part is obfuscated): never a webhook.
  ['reserved', 'ipv6', '64:ff9b:1::', 48],
  ['reserved', 'ipv6', '2001::', 32],
  // Deprecated site-local (still routed inside some networks) and the discard prefix.
  ['reserved', 'ipv6', 'fec0::', 10],
  ['reserved', 'ipv6', '100::', 64],
  ['reserved', 'ipv6', '2001:db8::', 32],
];

const lists = new Map<AddressClass, BlockList>();
for (const [cls, family, network, prefix] of RANGES) {
  const list = lists.get(cls) ?? new BlockList();
  list.addSubnet(network, prefix, family);
  lists.set(cls, list);
}

/** The eight 16-bit groups of an IPv6 address (a trailing dotted quad included). */
function ipv6Groups(address: string): number[] {
  let text = address.toLowerCase().replace(/%.*$/, '');
  const quad = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (quad) {
    const [a, b, c, d] = quad.slice(1).map(Number);
    text = `${text.slice(0, quad.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.includes('::') ? text.split('::') : [text, null];
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const fill = tail === null ? [] : Array(8 - left.length - right.length).fill('0');
  return [...left, ...fill, ...right].map((g) => parseInt(g, 16));
}

const v4 = (hi: number, lo: number): string => `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;

/**
 * The IPv4 address an IPv6 one carries, where the network would deliver to it:
 * IPv4-mapped `::ffff:a.b.c.d` (also in hex), the deprecated IPv4-compatible `::a.b.c.d`,
 * NAT64 `64:ff9b::/96`, and 6to4 `2002:aabb:ccdd::/48`.
 */
function embeddedIpv4(address: string): string | null {
  const g = ipv6Groups(address);
  const zeros = (from: number, to: number) => g.slice(from, to).every((x) => x === 0);
  if (zeros(0, 5) && g[5] === 0xffff) return v4(g[6], g[7]);
  if (zeros(0, 4) && g[4] === 0xffff && g[5] === 0) return v4(g[6], g[7]); // IPv4-translated
  if (zeros(0, 6) && (g[6] !== 0 || g[7] > 1)) return v4(g[6], g[7]);
  if (g[0] === 0x64 && g[1] === 0xff9b && zeros(2, 6)) return v4(g[6], g[7]);
  if (g[0] === 0x2002) return v4(g[1], g[2]);
  return null;
}

export function classifyAddress(address: string): AddressClass {
  const bare = address.replace(/^\[|\]$/g, '');
  const family = isIP(bare);
  if (family === 0) throw new Error(`not an IP address: ${address}`);
  if (family === 6) {
    const v4 = embeddedIpv4(bare);
    if (v4) return classifyAddress(v4);
  }
  for (const [cls, list] of lists) {
    if (list.check(bare, family === 4 ? 'ipv4' : 'ipv6')) return cls;
  }
  return 'public';
}

/**
 * Whether a webhook may connect to `address`. With `allowPrivateNetworks`, loopback and
 * private ranges open up for local development; cloud metadata addresses (wherever they
 * are), link-local, multicast, unspecified and reserved addresses never do.
 */
export function checkAddress(
  address: string,
  allowPrivateNetworks: boolean,
): { allowed: boolean; class: AddressClass } {
  const cls = classifyAddress(address);
  const allowed =
    cls === 'public' ||
    (allowPrivateNetworks && ['loopback', 'private', 'cgnat', 'unique-local'].includes(cls));
  return { allowed, class: cls };
}

/**
 * The host of a webhook URL as the connection will see it: http(s) only, normalised by
 * the WHATWG parser (numeric IPv4 spellings become dotted quads, IPv6 loses its brackets).
 * Returns the IP literal when the host is one, else the hostname to resolve.
 */
export function webhookTarget(url: string): { host: string; ip: string | null } {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error('url is not a valid URL');
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')
    throw new Error('url must be http or https');
  if (parsed.username || parsed.password) throw new Error('url must not carry credentials');
  const host = parsed.hostname.replace(/^\[|\]$/g, '');
  return { host, ip: isIP(host) ? host : null };
}

/**
 * What the attempt record (and a 422) says. For a name, not the address it resolved to:
 * tenants must not be able to map internal names to addresses through their webhooks.
 */
export function refusalMessage(address: string, cls: string, hostname?: string): string {
  return hostname && hostname !== address
    ? `destination refused: ${hostname} resolves to a non-public address`
    : `destination refused: ${address} is a ${cls} address`;
}

/**
 * What can be refused without DNS, as the message to show, or null: a URL that is not
 * http(s) or carries credentials, and an IP literal or `localhost` in a refused range.
 * Used when a webhook is saved and again before each connection (Node connects to IP
 * literals without a lookup, so the lookup-time check never sees them).
 */
export function refusalWithoutLookup(url: string, allowPrivateNetworks: boolean): string | null {
  let target: { host: string; ip: string | null };
  try {
    target = webhookTarget(url);
  } catch (err) {
    return (err as Error).message;
  }
  const host = target.host.toLowerCase();
  const literal =
    target.ip ?? (host === 'localhost' || host.endsWith('.localhost') ? '127.0.0.1' : null);
  if (!literal) return null;
  const verdict = checkAddress(literal, allowPrivateNetworks);
  return verdict.allowed ? null : refusalMessage(literal, verdict.class, target.host);
}
