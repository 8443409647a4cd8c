import { checkAddress, classifyAddress, webhookTarget } from './ssrf';

/** The target as the connection would see it, then the verdict. */
function verdict(url: string, allowPrivate = false): string {
  const { host, ip } = webhookTarget(url);
  if (!ip)
    return host === 'localhost' ? 'refused (localhost resolves to loopback)' : `resolve ${host}`;
  const { allowed, class: cls } = checkAddress(ip, allowPrivate);
  return `${allowed ? 'allowed' : 'refused'} ${cls}`;
}

describe('SSRF address checks', () => {
  it.each([
    ['http://127.1/', 'refused loopback'],
    ['http://2130706433/', 'refused loopback'],
    ['http://0x7f.1/', 'refused loopback'],
    ['http://0177.0.0.1/', 'refused loopback'],
    ['http://[::1]/', 'refused loopback'],
    ['http://[::ffff:127.0.0.1]/', 'refused loopback'],
    ['http://[::ffff:7f00:1]/', 'refused loopback'],
    ['http://169.254.169.254/latest/meta-data', 'refused metadata'],
    ['http://169.254.170.2/v2/credentials', 'refused metadata'],
    ['http://169.254.1.1/', 'refused link-local'],
    ['http://[fd00:ec2::254]/', 'refused metadata'],
    ['http://[fd20:ce::254]/', 'refused metadata'],
    ['http://100.100.100.200/latest/meta-data', 'refused metadata'],
    ['http://168.63.129.16/machine', 'refused metadata'],
    ['http://[::ffff:100.100.100.200]/', 'refused metadata'],
    ['http://[64:ff9b::6464:64c8]/', 'refused metadata'],
    ['http://100.64.0.1/', 'refused cgnat'],
    ['http://[fd00::1]/', 'refused unique-local'],
    ['http://0.0.0.0/', 'refused unspecified'],
    ['http://[::]/', 'refused unspecified'],
    ['http://10.1.2.3/', 'refused private'],
    ['http://172.31.255.255/', 'refused private'],
    ['http://192.168.1.1/', 'refused private'],
    ['http://[fe80::1]/', 'refused link-local'],
    ['http://224.0.0.1/', 'refused multicast'],
    ['http://255.255.255.255/', 'refused reserved'],
    ['http://[::7f00:1]/', 'refused loopback'],
    ['http://[::127.0.0.1]/', 'refused loopback'],
    ['http://[64:ff9b::7f00:1]/', 'refused loopback'],
    ['http://[64:ff9b::169.254.169.254]/', 'refused metadata'],
    ['http://[64:ff9b::a00:1]/', 'refused private'],
    ['http://[2002:a9fe:a9fe::1]/', 'refused metadata'],
    ['http://[2002:7f00:1::]/', 'refused loopback'],
    ['http://[64:ff9b:1::a00:1]/', 'refused reserved'],
    ['http://[2001:0:4136:e378::1]/', 'refused reserved'],
    ['http://[::ffff:a9fe:a9fe]/', 'refused metadata'],
    ['http://[::ffff:0:7f00:1]/', 'refused loopback'],
    ['http://[fec0::1]/', 'refused reserved'],
    ['http://[100::1]/', 'refused reserved'],
    ['http://192.0.2.2/', 'refused reserved'],
    ['http://198.51.100.7/', 'refused reserved'],
    ['http://203.0.113.9/', 'refused reserved'],
    ['http://[2001:db8::1]/', 'refused reserved'],
    ['http://[::ffff:192.0.2.2]/', 'refused reserved'],
    ['http://[2002:c000:202::1]/', 'refused reserved'],
    ['https://[64:ff9b::5db8:d822]/', 'allowed public'],
    ['https://[2002:5db8:d822::1]/', 'allowed public'],
    ['https://93.184.216.34/', 'allowed public'],
    ['https://[2606:4700::1111]/', 'allowed public'],
    ['http://localhost:9000/', 'refused (localhost resolves to loopback)'],
    ['https://hooks.example.com/x', 'resolve hooks.example.com'],
  ])('%s → %s', (url, expected) => {
    expect(verdict(url)).toBe(expected);
  });

  it('opens loopback and private ranges, never link-local or metadata, with WEBHOOK_ALLOW_PRIVATE_NETWORKS', () => {
    expect(verdict('http://127.0.0.1:9000/', true)).toBe('allowed loopback');
    expect(verdict('http://10.0.0.5/', true)).toBe('allowed private');
    expect(verdict('http://[::1]/', true)).toBe('allowed loopback');
    expect(verdict('http://169.254.169.254/', true)).toBe('refused metadata');
    // Metadata services in ranges the flag opens (unique-local, CGNAT) or in public space.
    expect(verdict('http://[fd00:ec2::254]/', true)).toBe('refused metadata');
    expect(verdict('http://[fd20:ce::254]/', true)).toBe('refused metadata');
    expect(verdict('http://100.100.100.200/', true)).toBe('refused metadata');
    expect(verdict('http://168.63.129.16/', true)).toBe('refused metadata');
    expect(verdict('http://[fd00:ec2::1]/', true)).toBe('allowed unique-local');
    expect(verdict('http://100.100.100.201/', true)).toBe('allowed cgnat');
    expect(verdict('http://[fe80::1]/', true)).toBe('refused link-local');
    expect(verdict('http://0.0.0.0/', true)).toBe('refused unspecified');
    expect(verdict('http://224.0.0.1/', true)).toBe('refused multicast');
  });

  it.each([
    'ftp://example.com/',
    'file:///etc/passwd',
    'gopher://x/',
    'not a url',
    'http://user:pw@example.com/',
  ])('refuses %s before any lookup', (url) => expect(() => webhookTarget(url)).toThrow());

  it('refuses to classify a hostname', () => {
    expect(() => classifyAddress('example.com')).toThrow(/not an IP/);
  });
});
