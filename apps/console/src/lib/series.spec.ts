import type { Schemas } from '../api/client';
import { alertSpans, bandSeries, firingWindow, openedPerBucket } from './series';

const b = (iso: string, value: number) => ({ bucket_start: iso, value, count: 1 });

describe('bandSeries', () => {
  it('joins the three answers by bucket, oldest first, with null where one has none', () => {
    const s = bandSeries(
      [b('2026-01-01T00:01:00Z', 1), b('2026-01-01T00:00:00Z', 0)],
      [b('2026-01-01T00:00:00Z', 2), b('2026-01-01T00:01:00Z', 3)],
      [b('2026-01-01T00:00:00Z', 4)],
    );
    const t0 = Date.parse('2026-01-01T00:00:00Z') / 1000;
    expect(s).toEqual({ xs: [t0, t0 + 60], min: [0, 1], avg: [2, 3], max: [4, null] });
  });

  it('is empty for no readings', () => {
    expect(bandSeries([], [], [])).toEqual({ xs: [], min: [], avg: [], max: [] });
  });
});

const alert = (over: Partial<Schemas['AlertResponse']>): Schemas['AlertResponse'] => ({
  id: 'a',
  project_id: 'p',
  rule_id: 'r',
  device_id: 'd',
  status: 'open',
  triggered_at: '2026-01-01T00:10:00Z',
  acknowledged_at: null,
  resolved_at: null,
  created_at: '2026-01-01T00:10:00Z',
  details: {},
  silenced_by: null,
  reminders_sent: 0,
  ...over,
});

describe('alertSpans', () => {
  const t = (iso: string) => Date.parse(iso) / 1000;
  const view = { from: t('2026-01-01T00:00:00Z'), to: t('2026-01-01T01:00:00Z') };

  it('runs an open alert to now, a resolved one to its resolution, clipped to the view', () => {
    const spans = alertSpans(
      [
        alert({ id: 'open' }),
        alert({
          id: 'done',
          status: 'resolved',
          triggered_at: '2025-12-31T23:00:00Z',
          resolved_at: '2026-01-01T00:05:00Z',
        }),
      ],
      view,
      t('2026-01-01T02:00:00Z'),
    );
    expect(spans).toEqual([
      { id: 'open', status: 'open', from: t('2026-01-01T00:10:00Z'), to: view.to },
      { id: 'done', status: 'resolved', from: view.from, to: t('2026-01-01T00:05:00Z') },
    ]);
  });

  it('leaves out alerts outside the view', () => {
    const before = alert({
      status: 'resolved',
      triggered_at: '2025-12-31T00:00:00Z',
      resolved_at: '2025-12-31T01:00:00Z',
    });
    expect(alertSpans([before], view, view.to)).toEqual([]);
  });
});

describe('firingWindow', () => {
  it('reads the window and the rule from the alert, oldest first', () => {
    const w = firingWindow({
      rule: { metric: 't', operator: '>', threshold: 50 },
      window: [
        { ts: '2026-01-01T00:02:00Z', value: 52, breached: true },
        { ts: '2026-01-01T00:01:00Z', value: 40, breached: false },
      ],
    });
    expect(w.points.map((p) => p.value)).toEqual([40, 52]);
    expect(w).toMatchObject({ threshold: 50, operator: '>', metric: 't' });
  });

  it('ignores what is not a window (an offline alert, an older record)', () => {
    expect(firingWindow({ window: 'x', rule: null })).toEqual({
      points: [],
      threshold: null,
      operator: null,
      metric: null,
    });
    expect(firingWindow({ window: [{ ts: 1 }, null, { ts: 'x', value: 'y' }] }).points).toEqual([]);
  });
});

it('openedPerBucket counts the opens of every device in their bucket', () => {
  const result = {
    from: '2026-01-01T00:00:00Z',
    to: '2026-01-01T03:00:00Z',
    devices: [
      {
        transitions: [
          { kind: 'open', at: '2026-01-01T00:30:00Z' },
          { kind: 'resolve', at: '2026-01-01T00:40:00Z' },
        ],
      },
      {
        transitions: [
          { kind: 'open', at: '2026-01-01T00:59:59Z' },
          { kind: 'open', at: '2026-01-01T02:00:00Z' },
        ],
      },
    ],
  } as unknown as Schemas['BacktestResponse'];
  const { xs, opened } = openedPerBucket(result, 3600);
  expect(xs).toHaveLength(3);
  expect(opened).toEqual([2, 0, 1]);
});
