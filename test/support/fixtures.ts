import request from 'supertest';
import type { App } from 'supertest/types';
import { DataSource } from 'typeorm';
import { inspect } from 'node:util';

/**
 * What the integration and e2e tests share: the time of test readings, posting readings
 * and rules, polling until something holds, and a few reads of what the worker stored.
 */

/** Anything with the api's HTTP server: a `RunningApi`. */
export interface HasServer {
  server: App;
}

/** What a request on behalf of a project needs: a `TestProject`. */
export interface ProjectAuth {
  projectId: string;
  headers: Record<string, string>;
}

/** The epoch of test readings unless a file needs another: 2025-01-01T00:00:00Z. */
export const T0 = Date.UTC(2025, 0, 1);

/** Reading `i` of a series one second apart, as an ISO timestamp. */
export type Clock = (i: number) => string;

/** The clock of a series that starts at `t0` (epoch milliseconds). */
export const clock =
  (t0: number): Clock =>
  (i) =>
    new Date(t0 + i * 1000).toISOString();

/** `i` seconds after T0, as an ISO timestamp. */
export const at: Clock = clock(T0);

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface Reading {
  ts: string;
  data: Record<string, unknown>;
}

/**
 * `n` readings one second apart, the first at `start`: reading `i` (0-based) of the batch
 * is at `clk(start + i)` with `data(start + i, i)`.
 */
export function readings(
  n: number,
  data: (k: number, i: number) => Record<string, unknown>,
  { start = 0, at: clk = at }: { start?: number; at?: Clock } = {},
): Reading[] {
  return Array.from({ length: n }, (_, i) => ({ ts: clk(start + i), data: data(start + i, i) }));
}

export interface SendOptions {
  /** The index (on the clock) of the first value; 0 unless given. */
  start?: number;
  /** The metric each value is a reading of; `temperature` unless given. */
  metric?: string;
  /** The clock of the readings; `at` (from T0) unless given. */
  at?: Clock;
}

/**
 * POST /telemetry: `values` as readings of one metric of `device`, one second apart. A
 * `null` is a reading without that metric (`{ other: 1 }`). Expects 202.
 */
export function send(
  api: HasServer,
  p: ProjectAuth,
  device: string,
  values: Array<number | null>,
  { start = 0, metric = 'temperature', at: clk = at }: SendOptions = {},
): request.Test {
  return request(api.server)
    .post('/telemetry')
    .set(p.headers)
    .send({
      device_external_id: device,
      events: readings(
        values.length,
        (_k, i) => (values[i] === null ? { other: 1 } : { [metric]: values[i] }),
        { start, at: clk },
      ),
    })
    .expect(202);
}

/** 1 of 1 `t > 5`: an alert opens at the first hot reading. */
export const HOT_RULE = {
  name: 'hot',
  metric: 't',
  operator: '>',
  threshold: 5,
  window_n: 1,
  required_k: 1,
};

/**
 * POST /projects/{id}/rules with HOT_RULE's fields but those in `body` (which may also be
 * wrong on purpose). The status is the caller's to expect.
 */
export function rule(
  api: HasServer,
  p: ProjectAuth,
  body: Record<string, unknown> = {},
): request.Test {
  return request(api.server)
    .post(`/projects/${p.projectId}/rules`)
    .set(p.headers)
    .send({ ...HOT_RULE, ...body });
}

export interface UntilOptions<T> {
  /** Whether the probe's value is the awaited one; by default, whether it is truthy. */
  done?: (value: T) => boolean;
  /** 3000 unless given. */
  timeoutMs?: number;
  /** How long to wait between probes; 10 ms unless given. */
  everyMs?: number;
}

/**
 * Probes until the value is the awaited one and returns it, instead of sleeping a guessed
 * time; after `timeoutMs`, throws naming `what` and the last value seen.
 */
export async function until<T>(
  what: string,
  probe: () => T | Promise<T>,
  { done = Boolean, timeoutMs = 3000, everyMs = 10 }: UntilOptions<T> = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (done(value)) return value;
    if (Date.now() > deadline)
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}; last: ${inspect(value, { depth: 4 })}`,
      );
    await sleep(everyMs);
  }
}

/** The id of the project's device with that external id; undefined if there is none. */
export async function deviceIdOf(
  db: DataSource,
  projectId: string,
  externalId: string,
): Promise<string | undefined> {
  const [row] = await db.query(
    `SELECT id FROM devices WHERE project_id = $1 AND external_id = $2`,
    [projectId, externalId],
  );
  return row?.id;
}

/** How many readings of the device are stored. */
export async function storedCount(db: DataSource, device: string): Promise<number> {
  const [{ n }] = await db.query(`SELECT count(*) AS n FROM telemetry WHERE device_id = $1`, [
    device,
  ]);
  return Number(n);
}
