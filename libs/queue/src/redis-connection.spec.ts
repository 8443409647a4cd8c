import { redisOptionsFromUrl } from './redis-connection';

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
