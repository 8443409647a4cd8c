import { planResponse } from './response-plan';

const plan = (path: string, query = '') => planResponse(path, new URLSearchParams(query));

describe('planResponse', () => {
  it('answers 204 on any path but /status/<code>', () => {
    expect(plan('/')).toEqual({ status: 204, delayMs: 0 });
    expect(plan('/hooks/status/500')).toEqual({ status: 204, delayMs: 0 });
  });

  it.each([
    ['/status/503', 503],
    ['/status/410/', 410],
    ['/status/100', 100],
    ['/status/599', 599],
  ])('%s answers %d', (path, status) => {
    expect(plan(path)).toEqual({ status, delayMs: 0 });
  });

  it.each(['/status/099', '/status/600', '/status/abc', '/status/', '/status/5000', '/status/-1'])(
    '%s is a 400',
    (path) => {
      expect(plan(path)).toMatchObject({ status: 400, error: expect.stringMatching(/100-599/) });
    },
  );

  it('delays by delay_ms, capped at 60 s', () => {
    expect(plan('/status/500', 'delay_ms=250')).toEqual({ status: 500, delayMs: 250 });
    expect(plan('/', 'delay_ms=999999999999999999999')).toEqual({ status: 204, delayMs: 60000 });
  });

  it.each(['delay_ms=-5', 'delay_ms=1.5', 'delay_ms=soon', 'delay_ms='])('%s is a 400', (query) => {
    expect(plan('/', query)).toMatchObject({
      status: 400,
      error: expect.stringMatching(/delay_ms/),
    });
  });
});
