import fc from 'fast-check';
import { alignWindow, bucketFor, MAX_BUCKETS, pan, plural, RANGE_PRESETS, relative } from './time';

describe('bucketFor', () => {
  it('cuts every preset into at most 240 buckets, far under what the API allows', () => {
    for (const p of RANGE_PRESETS) {
      const b = bucketFor(p.seconds);
      expect(p.seconds / b).toBeLessThanOrEqual(240);
      expect(p.seconds / b).toBeLessThan(MAX_BUCKETS);
    }
    expect(bucketFor(3600)).toBe(15);
    expect(bucketFor(86400)).toBe(600);
  });

  it('never gives more buckets than asked, and at least one second', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 400 * 86400 }),
        fc.integer({ min: 1, max: 2000 }),
        (seconds, points) => {
          const b = bucketFor(seconds, points);
          expect(b).toBeGreaterThanOrEqual(1);
          expect(Number.isInteger(b)).toBe(true);
          expect(Math.ceil(seconds / b)).toBeLessThanOrEqual(points);
        },
      ),
    );
  });
});

describe('alignWindow', () => {
  it('covers the range with whole buckets aligned to the epoch', () => {
    fc.assert(
      fc.property(
        fc.double({ min: 0, max: 4e9, noNaN: true }),
        fc.double({ min: 0.001, max: 1e7, noNaN: true }),
        fc.constantFrom(1, 15, 60, 3600, 86400),
        (from, width, bucket) => {
          const w = alignWindow({ from, to: from + width }, bucket);
          expect(w.from % bucket).toBe(0);
          expect(w.to % bucket).toBe(0);
          expect(w.from).toBeLessThanOrEqual(from);
          expect(w.to).toBeGreaterThanOrEqual(from + width);
          expect(w.to - w.from).toBeLessThan(width + 2 * bucket + 1e-6);
        },
      ),
    );
  });
});

it('pan moves a range by a fraction of its width, keeping the width', () => {
  expect(pan({ from: 100, to: 200 }, -0.5)).toEqual({ from: 50, to: 150 });
  expect(pan({ from: 100, to: 200 }, 0.5)).toEqual({ from: 150, to: 250 });
});

it('relative says how long ago, or never', () => {
  const now = Date.parse('2026-01-01T12:00:00Z');
  expect(relative(null, now)).toBe('never');
  expect(relative('2026-01-01T11:59:30Z', now)).toBe('30 s ago');
  expect(relative('2026-01-01T11:50:00Z', now)).toBe('10 min ago');
  expect(relative('2026-01-01T09:00:00Z', now)).toBe('3 h ago');
  expect(relative('2025-12-25T12:00:00Z', now)).toBe('7 d ago');
  expect(relative('2026-01-01T12:00:20Z', now)).toBe('in 20 s');
});

it('plural counts in words', () => {
  expect(plural(0, 'alert')).toBe('0 alerts');
  expect(plural(1, 'alert')).toBe('1 alert');
  expect(plural(2, 'device')).toBe('2 devices');
});
