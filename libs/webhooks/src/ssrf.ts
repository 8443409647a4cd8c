import { BlockList, isIP } from 'node:net';

/**
 * Where a webhook may connect, pure (no DNS, no I/O): the connect-time check (a custom
 * `lookup` on the HTTP agent, so DNS rebinding and redirects can't slip past a check made
 * only when the webhook was created) will call {@link checkAddress} on every resolved
 * address. Hostnames are normalised by the WHATWG URL parser first, which turns the
 * numeric spellings of IPv4 (`127.1`, `2130706433`, `0x7f.1`, `0177.0.0.1`) into dotted
 * quads.
 */
export type AddressClass =
  | 'public'
  | 'loopback'
  | 'private'
  | 'cgnat'
  | 'unique-local'
  | 'link-local'
  | 'multicast'
  | 'unspecified'
  | 'reserved';

const RANGES: Array<[AddressClass, 'ipv4' | 'ipv6', string, number]> = [
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
  ['unspecified', 'ipv6', '::', 128],
  ['loopback', 'ipv6', '::1', 128],
  ['unique-local', 'ipv6', 'fc00::', 7],
  ['link-local', 'ipv6', 'fe80::', 10],
  ['multicast', 'ipv6', 'ff00::', 8],
];

const lists = new Map<AddressClass, BlockList>();
for (const [cls, family, network, prefix] of RANGES) {
  const list = lists.get(cls) ?? new BlockList();
  list.addSubnet(network, prefix, family);
  lists.set(cls, list);
}

/** IPv4-mapped (`::ffff:a.b.c.d`, also in hex) and NAT64 forms carry an IPv4 address. */
function embeddedIpv4(address: string): string | null {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1];
  const hex = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/i.exec(address);
  if (hex) {
    const hi = parseInt(hex[1], 16);
    const lo = parseInt(hex[2], 16);
    return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  }
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
 * private ranges open up for local development; link-local (cloud metadata at
 * 169.254.169.254), multicast, unspecified and reserved addresses never do.
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
