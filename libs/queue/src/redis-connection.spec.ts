import { queuePrefix, redisOptionsFromUrl } from './redis-connection';

describe('redisOptionsFromUrl', () => {
  it('reads host, port, credentials, db and tls', () => {
    expect(redisOptionsFromUrl('rediss://user:p%40ss@cache.local:6380/2')).toEqual({
      host: 'cache.local',
      port: 6380,
      username: 'user',
      password: 'p@ss',
      db: 2,
      tls: {},
      socketTimeout: 30000,
    });
  });

  it('defaults the port and leaves db unset', () => {
    expect(redisOptionsFromUrl('redis://127.0.0.1')).toMatchObject({
      host: '127.0.0.1',
      port: 6379,
      db: undefined,
    });
  });

  it('strips IPv6 brackets', () => {
    expect(redisOptionsFromUrl('redis://[::1]:6379').host).toBe('::1');
  });
});

describe('a Redis Cluster', () => {
  it('carries the seed nodes to the client factory', () => {
    expect(redisOptionsFromUrl('redis+cluster://:pw@10.0.0.1:7000,10.0.0.2:7001')).toMatchObject({
      host: '10.0.0.1',
      port: 7000,
      password: 'pw',
      clusterNodes: [
        { host: '10.0.0.1', port: 7000 },
        { host: '10.0.0.2', port: 7001 },
      ],
    });
    expect(redisOptionsFromUrl('redis://10.0.0.1')).not.toHaveProperty('clusterNodes');
  });

  it("tags each queue's prefix on a cluster only", () => {
    expect(queuePrefix({ url: 'redis+cluster://a:1', prefix: 'tp' }, 'alert-events')).toBe(
      'tp:bull:{alert-events}',
    );
    expect(queuePrefix({ url: 'redis://a:1', prefix: 'tp' }, 'alert-events')).toBe('tp:bull');
  });
});
