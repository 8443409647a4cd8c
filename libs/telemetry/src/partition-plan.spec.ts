import fc from 'fast-check';
import {
  boundaryAtOrBefore,
  DAY_MS,
  nextBoundary,
  PARTITION_AHEAD_DAYS,
  PartitionBounds,
  partitionName,
  PartitionPolicy,
  planPartitions,
} from './partition-plan';

const at = (iso: string) => new Date(iso);
const part = (from: string | null, to: string | null): PartitionBounds => ({
  name: partitionName(from ? at(from) : null, at(to ?? '2200-01-01')),
  from: from ? at(from) : null,
  to: to ? at(to) : null,
});
const bounds = (ps: PartitionBounds[]) =>
  ps.map((p) => [p.from?.toISOString() ?? null, p.to?.toISOString() ?? null]);
const monthly: PartitionPolicy = { interval: 'month', retentionDays: 0 };
const daily: PartitionPolicy = { interval: 'day', retentionDays: 0 };

describe('partition boundaries', () => {
  it.each([
    ['2026-12-01T00:00:00Z', 'day', '2026-12-02T00:00:00.000Z'],
    ['2026-12-01T23:59:59.999Z', 'day', '2026-12-02T00:00:00.000Z'],
    ['2026-12-31T12:00:00Z', 'day', '2027-01-01T00:00:00.000Z'],
    ['2024-02-28T05:00:00Z', 'day', '2024-02-29T00:00:00.000Z'],
    ['2026-12-01T00:00:00Z', 'month', '2027-01-01T00:00:00.000Z'],
    ['2026-12-09T00:00:00Z', 'month', '2027-01-01T00:00:00.000Z'],
    ['2024-01-31T00:00:00Z', 'month', '2024-02-01T00:00:00.000Z'],
  ] as const)('after %s by %s: %s', (t, interval, next) =>
    expect(nextBoundary(at(t), interval).toISOString()).toBe(next),
  );

  it('names a partition after its first day, or the one before everything after its end', () => {
    expect(partitionName(at('2026-12-09T00:00:00Z'), at('2027-01-01T00:00:00Z'))).toBe(
      'telemetry_p20261209',
    );
    expect(partitionName(null, at('2026-12-09T00:00:00Z'))).toBe('telemetry_before_20261209');
  });

  it('steps from any instant to boundaries strictly after it, never more than one width', () =>
    fc.assert(
      fc.property(
        fc.date({ min: new Date('1970-01-01'), max: new Date('2199-01-01'), noInvalidDate: true }),
        fc.constantFrom('day' as const, 'month' as const),
        (t, interval) => {
          const next = nextBoundary(t, interval);
          expect(next.getTime()).toBeGreaterThan(t.getTime());
          expect(next.getTime() - t.getTime()).toBeLessThanOrEqual(31 * DAY_MS);
          expect(boundaryAtOrBefore(next, interval)).toEqual(next);
          expect(boundaryAtOrBefore(t, interval).getTime()).toBeLessThanOrEqual(t.getTime());
        },
      ),
    ));
});

describe('planPartitions', () => {
  const now = at('2026-12-20T10:00:00Z');

  it('adds partitions from the newest one until a week ahead, first up to a boundary', () => {
    // What the migration leaves: everything before 9 December. A week after the 28th is in January.
    const plan = planPartitions([part(null, '2026-12-09')], monthly, at('2026-12-28T00:00:00Z'));
    expect(bounds(plan.create)).toEqual([
      ['2026-12-09T00:00:00.000Z', '2027-01-01T00:00:00.000Z'],
      ['2027-01-01T00:00:00.000Z', '2027-02-01T00:00:00.000Z'],
    ]);
    expect(plan.create.map((p) => p.name)).toEqual(['telemetry_p20261209', 'telemetry_p20270101']);
    expect(plan.drop).toEqual([]);
    expect(bounds(planPartitions([part(null, '2026-12-09')], monthly, now).create)).toEqual([
      ['2026-12-09T00:00:00.000Z', '2027-01-01T00:00:00.000Z'],
    ]);
  });

  it('adds daily partitions up to a week ahead, and nothing once they are there', () => {
    const plan = planPartitions([part(null, '2026-12-09')], daily, now);
    expect(plan.create).toHaveLength(19); // 9 … 27 December
    expect(plan.create.at(-1)!.to!.getTime()).toBeGreaterThanOrEqual(
      now.getTime() + PARTITION_AHEAD_DAYS * DAY_MS,
    );
    const again = planPartitions([part(null, '2026-12-09'), ...plan.create], daily, now);
    expect(again).toEqual({ create: [], drop: [] });
  });

  it('covers the whole range, without gaps or overlaps, at any time', () =>
    fc.assert(
      fc.property(
        fc.date({ min: new Date('2000-01-01'), max: new Date('2150-01-01'), noInvalidDate: true }),
        fc.constantFrom('day' as const, 'month' as const),
        (t, interval) => {
          const plan = planPartitions([], { interval, retentionDays: 0 }, t);
          expect(plan.create[0].from).toBeNull();
          for (let i = 1; i < plan.create.length; i++)
            expect(plan.create[i].from).toEqual(plan.create[i - 1].to);
          expect(plan.create[1].from!.getTime()).toBeLessThanOrEqual(t.getTime());
          expect(plan.create.at(-1)!.to!.getTime()).toBeGreaterThanOrEqual(
            t.getTime() + PARTITION_AHEAD_DAYS * DAY_MS,
          );
        },
      ),
    ));

  it('drops the partitions whose every reading is past the retention, and no other', () => {
    const existing = [
      part(null, '2026-11-01'),
      part('2026-11-01', '2026-11-20'),
      part('2026-11-20', '2026-11-21'),
      part('2026-11-21', '2027-01-01'),
    ];
    // Kept: since 2026-11-20T10:00Z.
    const plan = planPartitions(existing, { interval: 'month', retentionDays: 30 }, now);
    expect(plan.drop.map((p) => p.name)).toEqual([
      'telemetry_before_20261101',
      'telemetry_p20261101',
    ]);
    expect(plan.create).toEqual([]);
  });

  it('keeps everything with no retention', () => {
    const plan = planPartitions(
      [part(null, '1990-01-01'), part('1990-01-01', '2027-01-01')],
      monthly,
      now,
    );
    expect(plan).toEqual({ create: [], drop: [] });
  });

  it('takes older readings again when the retention is raised after partitions were dropped', () => {
    const existing = [part('2026-11-01', '2026-12-01'), part('2026-12-01', '2027-01-01')];
    // 30 days: 1 November is already out of reach, nothing to add below.
    expect(planPartitions(existing, { interval: 'month', retentionDays: 30 }, now).create).toEqual(
      [],
    );
    // A year, or forever: one partition for everything before 1 November.
    for (const retentionDays of [365, 0])
      expect(
        bounds(planPartitions(existing, { interval: 'month', retentionDays }, now).create),
      ).toEqual([[null, '2026-11-01T00:00:00.000Z']]);
  });

  it('adds nothing ahead of a partition that takes everything after it', () => {
    expect(planPartitions([part(null, null)], daily, now)).toEqual({ create: [], drop: [] });
  });
});
