import { declaredPatternOf, KEY_NAMESPACES, KEY_SPACE } from './key-space';

describe('the declared key space', () => {
  it.each([
    ['tp:bull:telemetry-ingest:wait', false],
    ['tp:bull:{telemetry-ingest}:telemetry-ingest:wait', true],
    ['tp:ingest:seq:d1', false],
    ['tp:ingest:{p1}:seq:d1', true],
    ['tp:ingest:{p1}:backlog', true],
    ['tp:ingest:{p1}:body:b1', false],
    ['tp:circuit:p1:abc', true],
    ['{tp:ratelimit:admin:m}:hits', true],
    ['tp:webhooks:{p1}:in-flight', false],
  ])('declares %s (cluster: %s)', (key, cluster) => {
    expect(declaredPatternOf(key, 'tp', cluster)).toBeDefined();
  });

  it.each([
    ['tp:ingest:seq:d1', true],
    ['tp:bull:telemetry-ingest:wait', true],
    ['tp:cache:x', false],
    ['other:circuit:p1:abc', false],
  ])('does not declare %s (cluster: %s)', (key, cluster) => {
    expect(declaredPatternOf(key, 'tp', cluster)).toBeUndefined();
  });

  it('gives every pattern an owner and a slot decision, and a tag to every multi-key group', () => {
    for (const p of KEY_SPACE) {
      expect(p.owner).not.toBe('');
      expect(p.slot).not.toBe('');
    }
    expect([...KEY_NAMESPACES].sort()).toEqual([
      'bull',
      'circuit',
      'ingest',
      'ratelimit',
      'webhooks',
    ]);
  });
});
