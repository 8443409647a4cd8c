import { Cluster } from 'ioredis';
import { createRedisClient, parseRedisUrl } from './redis-target';

describe('parseRedisUrl', () => {
  it('reads one Redis: host, port, credentials, database, TLS', () => {
    expect(parseRedisUrl('rediss://user:p%40ss@cache.local:6380/2')).toEqual({
      cluster: false,
      nodes: [{ host: 'cache.local', port: 6380 }],
      node: { username: 'user', password: 'p@ss', db: 2, tls: {} },
    });
    expect(parseRedisUrl('redis://127.0.0.1')).toEqual({
      cluster: false,
      nodes: [{ host: '127.0.0.1', port: 6379 }],
      node: { username: undefined, password: undefined, db: undefined, tls: undefined },
    });
  });

  it('reads a cluster: every seed node, a password without a user', () => {
    expect(parseRedisUrl('redis+cluster://:s3cret@10.0.0.1:7000,10.0.0.2,[::1]:7002/')).toEqual({
      cluster: true,
      nodes: [
        { host: '10.0.0.1', port: 7000 },
        { host: '10.0.0.2', port: 6379 },
        { host: '::1', port: 7002 },
      ],
      node: { username: undefined, password: 's3cret', db: undefined, tls: undefined },
    });
    expect(parseRedisUrl('rediss+cluster://a:1').node.tls).toEqual({});
  });

  it.each([
    ['http://x', /unsupported scheme/],
    ['redis://a:1,b:2', /need redis\+cluster/],
    ['redis+cluster://a:1/3', /not a database number a cluster has/],
    ['redis://a/x', /not a database number/],
    ['redis://a:port', /not host:port/],
    ['redis+cluster://', /no host/],
    ['redis://h:6379?family=6', /no query string/],
  ])('refuses %s', (url, message) => {
    expect(() => parseRedisUrl(url)).toThrow(message);
  });
});

describe('createRedisClient', () => {
  it('gives a cluster the cluster-level options and every node the rest', () => {
    const client = createRedisClient(parseRedisUrl('rediss+cluster://:pw@127.0.0.1:1'), {
      lazyConnect: true,
      enableOfflineQueue: false,
      commandTimeout: 1234,
      retryStrategy: () => 5,
    }) as Cluster;
    expect(client).toBeInstanceOf(Cluster);
    expect(client.options.enableOfflineQueue).toBe(false);
    expect(client.options.lazyConnect).toBe(true);
    expect(client.options.clusterRetryStrategy?.(1)).toBe(5);
    expect(client.options.redisOptions).toMatchObject({
      password: 'pw',
      commandTimeout: 1234,
      tls: {},
    });
    expect(client.options.redisOptions).not.toHaveProperty('enableOfflineQueue');
    expect(client.options.dnsLookup).toBeDefined();
    client.disconnect();
  });
});
