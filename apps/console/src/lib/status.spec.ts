import type { Schemas } from '../api/client';
import { DEFAULT_ONLINE_SECONDS, deviceStatus, onlineWindow } from './status';

const rule = (over: Partial<Schemas['RuleResponse']>) =>
  ({
    enabled: true,
    kind: 'offline',
    offline_after_seconds: 600,
    ...over,
  }) as Schemas['RuleResponse'];

it('online means heard from within the shortest enabled offline rule, else five minutes', () => {
  expect(onlineWindow([])).toBe(DEFAULT_ONLINE_SECONDS);
  expect(onlineWindow([rule({}), rule({ offline_after_seconds: 120 })])).toBe(120);
  expect(onlineWindow([rule({ enabled: false, offline_after_seconds: 60 }), rule({})])).toBe(600);
  expect(onlineWindow([rule({ kind: 'threshold', offline_after_seconds: null })])).toBe(
    DEFAULT_ONLINE_SECONDS,
  );
});

it('deviceStatus: never, online up to the window inclusive, offline after', () => {
  const now = Date.parse('2026-01-01T00:10:00Z');
  expect(deviceStatus(null, now, 300)).toBe('never');
  expect(deviceStatus('2026-01-01T00:05:00Z', now, 300)).toBe('online');
  expect(deviceStatus('2026-01-01T00:04:59Z', now, 300)).toBe('offline');
});
