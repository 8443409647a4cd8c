import { randomUUID } from 'node:crypto';
import { MetricsService } from '@app/observability';
import { adminHeaders } from '@app/testing';
import { Queue } from 'bullmq';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { RunningApi } from '../support/api';
import { at, deviceIdOf, readings, sleep, storedCount, T0 } from '../support/fixtures';
import { Stack, startStack } from '../support/stack';
import { drained, RunningWorker } from '../support/worker';

const events = (n: number, start = 0) =>
  readings(n, (k) => ({ temperature: k, status: 'ok' }), { start });

describe('telemetry (e2e)', () => {
  let stack: Stack;
  let api: RunningApi;
  let worker: RunningWorker;
  let queue: Queue;
  let db: DataSource;

  beforeAll(async () => {
    stack = await startStack();
    ({ api, worker, db } = stack);
    queue = stack.pipeline.ingest;
  });
  afterAll(() => stack.close());

  const ingest = (key: string, body: unknown) =>
    request(api.server)
      .post('/telemetry')
      .set('X-API-Key', key)
      .send(body as object);
  const rows = (device: string) => storedCount(db, device);
  const deviceOf = (projectId: string, externalId: string) =>
    deviceIdOf(db, projectId, externalId) as Promise<string>;

  it('stores a 5,000-event batch exactly once; replays and in-batch duplicates add nothing', async () => {
    const p = await api.tenants.newProject();
    const batch = events(5000);
    const res = await ingest(p.apiKey, { device_external_id: 'big', events: batch }).expect(202);
    expect(res.body).toEqual({
      accepted: 5000,
      batch_id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      non_numeric_values: 5000, // every status: 'ok'
    });
    await drained(queue);
    const deviceId = await deviceOf(p.projectId, 'big');
    expect(await rows(deviceId)).toBe(5000);

    await ingest(p.apiKey, { device_external_id: 'big', events: batch }).expect(202); // replay
    const dup = [...events(3, 10000), ...events(3, 10000)].map((e, i) =>
      i >= 3 ? { ...e, data: { x: 1 } } : e,
    );
    await ingest(p.apiKey, { device_external_id: 'big', events: dup }).expect(202);
    await drained(queue);
    expect(await rows(deviceId)).toBe(5003);
    // The first event of a duplicated ts wins.
    const kept = await db.query(`SELECT data FROM telemetry WHERE device_id = $1 AND ts = $2`, [
      deviceId,
      at(10000),
    ]);
    expect(kept[0].data).toEqual({ temperature: 10000, status: 'ok' });

    const device = await request(api.server).get(`/devices/${deviceId}`).set(p.headers).expect(200);
    expect(device.body.last_seen_at).toEqual(expect.any(String));
  });

  it('stores exactly what was validated, even when the body repeats a key', async () => {
    const p = await api.tenants.newProject();
    const validated = JSON.stringify(events(2, 500));
    const smuggled = JSON.stringify([{ ts: 'not a time', data: { x: { nested: true } } }]);
    const raw = `{"device_external_id":"dup-keys","events":${smuggled},"events":${validated}}`;
    await request(api.server)
      .post('/telemetry')
      .set(p.headers)
      .set('Content-Type', 'application/json')
      .send(raw)
      .expect(202);
    await drained(queue);
    const deviceId = await deviceOf(p.projectId, 'dup-keys');
    const stored = await db.query(
      `SELECT ts, data FROM telemetry WHERE device_id = $1 ORDER BY ts`,
      [deviceId],
    );
    expect(
      stored.map((r: { ts: Date; data: unknown }) => ({ ts: r.ts.toISOString(), data: r.data })),
    ).toEqual(events(2, 500));
  });

  it.each([
    ['a NUL in a string value', '{"a":"x\\u0000y"}'],
    ['an unpaired surrogate', '{"a":"\\ud800"}'],
    ['a NUL in a metric name', '{"a\\u0000":1}'],
  ])(
    'refuses text PostgreSQL cannot store (%s) with 422 instead of losing the batch',
    async (_label, data) => {
      const p = await api.tenants.newProject();
      const raw = `{"device_external_id":"text","events":[{"ts":"2025-01-01T00:00:00Z","data":${data}}]}`;
      const res = await request(api.server)
        .post('/telemetry')
        .set(p.headers)
        .set('Content-Type', 'application/json')
        .send(raw)
        .expect(422);
      expect(res.body.details[0].field).toMatch(/^events\.0\.data/);
    },
  );

  it('stores bodies with a BOM and with number literals beyond a double as validated', async () => {
    const p = await api.tenants.newProject();
    const post = (raw: string) =>
      request(api.server)
        .post('/telemetry')
        .set(p.headers)
        .set('Content-Type', 'application/json')
        .send(raw)
        .expect(202);
    await post(
      '\uFEFF{"device_external_id":"odd","events":[{"ts":"2025-01-01T00:00:00Z","data":{"t":1}}]}',
    );
    await post(
      '{"device_external_id":"odd","events":[{"ts":"2025-01-01T00:00:01Z","data":{"t":1e-400}}]}',
    );
    await drained(queue);
    const deviceId = await deviceOf(p.projectId, 'odd');
    const stored = await db.query(`SELECT data FROM telemetry WHERE device_id = $1 ORDER BY ts`, [
      deviceId,
    ]);
    expect(stored.map((r: { data: unknown }) => r.data)).toEqual([{ t: 1 }, { t: 0 }]);
    const agg = await request(api.server)
      .get(`/telemetry/devices/${deviceId}/telemetry/aggregate`)
      .query({ metric: 't', from: at(0), to: at(10), bucket_seconds: 60, agg: 'sum' })
      .set(p.headers)
      .expect(200);
    expect(agg.body.items).toEqual([{ bucket_start: at(0), value: 1, count: 2 }]);
  });

  it('stores a batch sent with the charset written in any of the ways HTTP allows', async () => {
    const p = await api.tenants.newProject();
    const types = ['application/json; charset="utf-8"', 'application/json;charset=UTF-8'];
    for (const [i, type] of types.entries()) {
      await request(api.server)
        .post('/telemetry')
        .set(p.headers)
        .set('Content-Type', type)
        .send(JSON.stringify({ device_external_id: 'charset', events: events(2, i * 2) }))
        .expect(202);
    }
    await drained(queue);
    expect(await rows(await deviceOf(p.projectId, 'charset'))).toBe(4);
  });

  it('answers 422, not 500, when an aggregate overflows a double', async () => {
    const p = await api.tenants.newProject();
    await ingest(p.apiKey, {
      device_external_id: 'huge',
      events: [
        { ts: at(0), data: { v: 1.7e308 } },
        { ts: at(1), data: { v: 1.7e308 } },
      ],
    }).expect(202);
    await drained(queue);
    const deviceId = await deviceOf(p.projectId, 'huge');
    const res = await request(api.server)
      .get(`/telemetry/devices/${deviceId}/telemetry/aggregate`)
      .query({ metric: 'v', from: at(0), to: at(10), bucket_seconds: 60, agg: 'sum' })
      .set(p.headers)
      .expect(422);
    expect(res.body.details[0].field).toBe('agg');
  });

  it('refuses forged cursors with 422 on every list', async () => {
    const p = await api.tenants.newProject();
    const d = await request(api.server)
      .post(`/projects/${p.projectId}/devices`)
      .set(p.headers)
      .send({ external_id: 'c' })
      .expect(201);
    const forge = (v: unknown[]) => Buffer.from(JSON.stringify(v)).toString('base64url');
    const lists = [
      [`/projects/${p.projectId}/devices`, forge(['x', 'y'])],
      [`/projects/${p.projectId}/rules`, forge(['2025-01-01T00:00:00.000Z', 'not-a-uuid'])],
      [`/projects/${p.projectId}/alerts`, forge(['1', '00000000-0000-4000-8000-000000000000'])],
      [`/telemetry/devices/${d.body.id}/telemetry`, forge(['1'])],
    ];
    for (const [url, cursor] of lists) {
      const res = await request(api.server).get(url).query({ cursor }).set(p.headers);
      expect({ url, status: res.status }).toEqual({ url, status: 422 });
    }
    const since = await request(api.server)
      .get(`/telemetry/devices/${d.body.id}/telemetry/since`)
      .query({ since_ts: 0, cursor: forge(['1']) })
      .set(p.headers);
    expect(since.status).toBe(422);
  });

  it('registers unknown devices, unless the project turned that off (404)', async () => {
    const p = await api.tenants.newProject();
    await ingest(p.apiKey, { device_external_id: 'new-one', events: events(1) }).expect(202);
    expect(await deviceOf(p.projectId, 'new-one')).toEqual(expect.any(String));
    await request(api.server)
      .patch(`/projects/${p.projectId}`)
      .set(adminHeaders)
      .send({ auto_register_devices: false })
      .expect(200);
    const res = await ingest(p.apiKey, { device_external_id: 'another', events: events(1) }).expect(
      404,
    );
    expect(res.body.message).toContain('another');
    expect(await deviceOf(p.projectId, 'another')).toBeUndefined();
  });

  it('needs the ingest scope', async () => {
    const p = await api.tenants.newProject();
    const read = await api.tenants.newKey(p.projectId, ['read']);
    await ingest(read.key, { device_external_id: 'd', events: events(1) }).expect(403);
    const ingestOnly = await api.tenants.newKey(p.projectId, ['ingest']);
    await ingest(ingestOnly.key, { device_external_id: 'd', events: events(1) }).expect(202);
  });

  const ok = { device_external_id: 'victim', events: events(1) };
  it.each([
    ['a JSON array', [ok], 422],
    ['a string', '"hello"', 400],
    ['truncated JSON', '{"device_external_id": "victim", "events": [', 400],
    ['no device', { events: ok.events }, 422],
    ['no events', { device_external_id: 'victim' }, 422],
    ['empty events', { ...ok, events: [] }, 422],
    ['5,001 events', { ...ok, events: events(5001) }, 413],
    ['events as object', { ...ok, events: { 0: ok.events[0] } }, 422],
    ['unknown field', { ...ok, project_id: 'x' }, 422],
    ['device id with spaces', { ...ok, device_external_id: 'a b' }, 422],
    ['device id as number', { ...ok, device_external_id: 42 }, 422],
    ['ts missing', { ...ok, events: [{ data: { a: 1 } }] }, 422],
    ['ts without zone', { ...ok, events: [{ ts: '2025-01-01T00:00:00', data: {} }] }, 422],
    ['ts as epoch number', { ...ok, events: [{ ts: 1735689600, data: {} }] }, 422],
    ['ts not a date', { ...ok, events: [{ ts: 'yesterday', data: {} }] }, 422],
    ['impossible date', { ...ok, events: [{ ts: '2025-02-30T00:00:00Z', data: {} }] }, 422],
    ['data missing', { ...ok, events: [{ ts: at(0) }] }, 422],
    ['data a list', { ...ok, events: [{ ts: at(0), data: [1, 2] }] }, 422],
    ['nested data', { ...ok, events: [{ ts: at(0), data: { a: { b: 1 } } }] }, 422],
    [
      'overflowing number',
      '{"device_external_id":"victim","events":[{"ts":"2025-01-01T00:00:00Z","data":{"a":1e999}}]}',
      422,
    ],
    ['long string value', { ...ok, events: [{ ts: at(0), data: { a: 'x'.repeat(1025) } }] }, 422],
    [
      '65 metrics',
      {
        ...ok,
        events: [
          {
            ts: at(0),
            data: Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`m${i}`, i])),
          },
        ],
      },
      422,
    ],
    ['long metric name', { ...ok, events: [{ ts: at(0), data: { ['m'.repeat(65)]: 1 } }] }, 422],
    [
      'one bad event among good ones',
      { ...ok, events: [...events(10), { ts: 'bad', data: {} }] },
      422,
    ],
  ])('refuses %s with a 4xx naming the problem, storing nothing', async (_label, body, status) => {
    const p = await api.tenants.newProject();
    const req = request(api.server).post('/telemetry').set(p.headers);
    const res =
      typeof body === 'string'
        ? await req.set('Content-Type', 'application/json').send(body)
        : await req.send(body as object);
    expect(res.status).toBe(status);
    expect(res.body).toMatchObject({
      statusCode: status,
      error: expect.any(String),
      message: expect.any(String),
    });
    if (status === 422) expect(res.body.details.length).toBeGreaterThan(0);
    expect(await deviceOf(p.projectId, 'victim')).toBeUndefined();
  });

  describe('reads', () => {
    let p: Awaited<ReturnType<RunningApi['tenants']['newProject']>>;
    let deviceId: string;
    const base = () => `/telemetry/devices/${deviceId}/telemetry`;

    beforeAll(async () => {
      p = await api.tenants.newProject();
      const batch = events(250).map((e, i) =>
        i % 10 === 0 ? { ...e, data: { status: 'no reading' } } : e,
      );
      await ingest(p.apiKey, { device_external_id: 'reader', events: batch }).expect(202);
      await drained(queue);
      deviceId = await deviceOf(p.projectId, 'reader');
    });

    it('lists newest first with a cursor that walks every row once', async () => {
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const page: request.Response = await request(api.server)
          .get(base())
          .query({ limit: 100, ...(cursor && { cursor }) })
          .set(p.headers)
          .expect(200);
        seen.push(...page.body.items.map((r: { ts: string }) => r.ts));
        cursor = page.body.next_cursor;
      } while (cursor);
      expect(seen).toEqual(
        events(250)
          .map((e) => e.ts)
          .reverse(),
      );
    });

    it('filters by [from, to)', async () => {
      const res = await request(api.server)
        .get(base())
        .query({ from: at(10), to: at(20) })
        .set(p.headers)
        .expect(200);
      expect(res.body.items.map((r: { ts: string }) => r.ts)).toEqual(
        events(10, 10)
          .map((e) => e.ts)
          .reverse(),
      );
      await request(api.server)
        .get(base())
        .query({ from: at(20), to: at(10) })
        .set(p.headers)
        .expect(422);
      await request(api.server).get(base()).query({ from: 'yesterday' }).set(p.headers).expect(422);
    });

    it('returns the latest reading, or 404 for a device without any', async () => {
      const res = await request(api.server).get(`${base()}/latest`).set(p.headers).expect(200);
      expect(res.body).toEqual({ ts: at(249), data: { temperature: 249, status: 'ok' } });
      const empty = await request(api.server)
        .post(`/projects/${p.projectId}/devices`)
        .set(p.headers)
        .send({ external_id: 'silent' })
        .expect(201);
      await request(api.server)
        .get(`/telemetry/devices/${empty.body.id}/telemetry/latest`)
        .set(p.headers)
        .expect(404);
    });

    it('lists readings after since_ts, oldest first, paginated', async () => {
      const since = (T0 + 239_000) / 1000;
      const first = await request(api.server)
        .get(`${base()}/since`)
        .query({ since_ts: since, limit: 5 })
        .set(p.headers)
        .expect(200);
      expect(first.body.items.map((r: { ts: string }) => r.ts)).toEqual(
        events(5, 240).map((e) => e.ts),
      );
      const rest = await request(api.server)
        .get(`${base()}/since`)
        .query({ since_ts: since, limit: 5, cursor: first.body.next_cursor })
        .set(p.headers)
        .expect(200);
      expect(rest.body.items.map((r: { ts: string }) => r.ts)).toEqual(
        events(5, 245).map((e) => e.ts),
      );
      expect(rest.body.next_cursor).toBeNull();
      await request(api.server)
        .get(`${base()}/since`)
        .query({ since_ts: 'soon' })
        .set(p.headers)
        .expect(422);
      await request(api.server).get(`${base()}/since`).set(p.headers).expect(422);
    });

    it('aggregates numeric readings per epoch-aligned bucket in one query', async () => {
      const q = { metric: 'temperature', from: at(0), to: at(250), bucket_seconds: 100 };
      const avg = await request(api.server)
        .get(`${base()}/aggregate`)
        .query({ ...q, agg: 'avg' })
        .set(p.headers)
        .expect(200);
      // Buckets [0,100), [100,200), [200,250); every 10th reading has no temperature.
      const expected = [
        [0, 100],
        [100, 200],
        [200, 250],
      ].map(([a, b]) => {
        const vals = Array.from({ length: b - a }, (_, i) => a + i).filter((i) => i % 10 !== 0);
        return {
          bucket_start: at(a),
          count: vals.length,
          sum: vals.reduce((s, v) => s + v, 0),
          min: vals[0],
          max: vals[vals.length - 1],
        };
      });
      expect(avg.body.items).toEqual(
        expected.map((e) => ({
          bucket_start: e.bucket_start,
          value: e.sum / e.count,
          count: e.count,
        })),
      );
      for (const agg of ['min', 'max', 'sum', 'count'] as const) {
        const res = await request(api.server)
          .get(`${base()}/aggregate`)
          .query({ ...q, agg })
          .set(p.headers)
          .expect(200);
        expect(res.body.items.map((i: { value: number }) => i.value)).toEqual(
          expected.map((e) => (agg === 'count' ? e.count : e[agg])),
        );
      }
    });

    it.each([
      ['unknown agg', { agg: 'median' }, 'agg'],
      ['zero bucket', { bucket_seconds: 0 }, 'bucket_seconds'],
      ['too many buckets', { bucket_seconds: 1, from: '2020-01-01T00:00:00Z' }, 'bucket_seconds'],
      ['missing metric', { metric: undefined }, 'metric'],
    ])('refuses an aggregate with %s (422)', async (_label, patch, field) => {
      const q = {
        metric: 'temperature',
        from: at(0),
        to: at(250),
        bucket_seconds: 100,
        agg: 'avg',
        ...patch,
      };
      const res = await request(api.server)
        .get(`${base()}/aggregate`)
        .query(q)
        .set(p.headers)
        .expect(422);
      expect(res.body.details.map((d: { field: string }) => d.field)).toContain(field);
    });

    it("404s another project's device", async () => {
      const other = await api.tenants.newProject();
      await request(api.server).get(base()).set(other.headers).expect(404);
      await request(api.server).get(`${base()}/latest`).set(other.headers).expect(404);
    });
  });

  it('a cursor walk during concurrent inserts returns every row exactly once', async () => {
    const p = await api.tenants.newProject();
    await ingest(p.apiKey, { device_external_id: 'busy', events: events(1000, 100000) }).expect(
      202,
    );
    await drained(queue);
    const deviceId = await deviceOf(p.projectId, 'busy');
    const before = new Set(
      (await db.query(`SELECT ts FROM telemetry WHERE device_id = $1`, [deviceId])).map(
        (r: { ts: Date }) => r.ts.toISOString(),
      ),
    );

    let writing = true;
    const writer = (async () => {
      // Newer and older readings keep arriving while the walk runs.
      for (let i = 0; writing && i < 40; i++) {
        await ingest(p.apiKey, {
          device_external_id: 'busy',
          events: [...events(20, 200000 + i * 20), ...events(5, 50000 + i * 5)],
        }).expect(202);
      }
    })();
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: request.Response = await request(api.server)
        .get(`/telemetry/devices/${deviceId}/telemetry`)
        .query({ limit: 37, ...(cursor && { cursor }) })
        .set(p.headers)
        .expect(200);
      seen.push(...page.body.items.map((r: { ts: string }) => r.ts));
      cursor = page.body.next_cursor;
      await sleep(5);
    } while (cursor);
    writing = false;
    await writer;

    expect(new Set(seen).size).toBe(seen.length); // no row twice
    for (const ts of before) expect(seen).toContain(ts); // every row that existed is there
  });

  it('dead-letters a batch that cannot be stored: failed set, metric and log, never dropped silently', async () => {
    const p = await api.tenants.newProject();
    const batchId = randomUUID();
    const payload = JSON.stringify({ device_external_id: 'gone', events: events(1) });
    const job = await queue.add(
      'ingest-batch',
      {
        projectId: p.projectId,
        deviceId: '00000000-0000-4000-8000-00000000dead',
        batchId,
        seq: 1,
        correlationId: 'test',
        acceptedAt: Date.now(),
        bytes: payload.length,
        events: 1,
        payload,
      },
      { jobId: 'b-dead-1' },
    );
    await drained(queue);
    expect(await job.getState()).toBe('failed');
    const failed = await queue.getJob(job.id!);
    expect(failed?.failedReason).toContain('does not exist');
    const metrics = await worker.app.get(MetricsService).render();
    expect(metrics.body).toMatch(/telemetry_ingest_batches_total\{result="failed"\} 1/);
    // The whole batch is set aside in PostgreSQL, where the project can read it back; the
    // failed job Redis keeps for a week no longer carries the payload.
    expect(failed?.data.payload).toBe('');
    const res = await request(api.server)
      .get(`/projects/${p.projectId}/rejected-readings`)
      .set(p.headers)
      .expect(200);
    expect(res.body.items).toEqual([
      expect.objectContaining({
        batch_id: batchId,
        scope: 'batch',
        index: null,
        reason: expect.stringContaining('does not exist'),
        payload_excerpt: expect.stringContaining('"device_external_id":"gone"'),
      }),
    ]);
  });

  describe("a batch's body, kept beside its job", () => {
    /** The job data of the batch the api queued as `batchId` (kept an hour once completed). */
    const jobOf = async (batchId: string) =>
      (await queue.getJobs(['completed'])).find((j) => j?.data.batchId === batchId)!;

    it('is bytes beside the job, not text inside it, and the job says how large it was', async () => {
      const p = await api.tenants.newProject();
      const res = await ingest(p.apiKey, { device_external_id: 'beside', events: events(20) });
      await drained(queue);
      const job = await jobOf(res.body.batch_id);
      expect(job.data).not.toHaveProperty('payload');
      expect(job.data.bytes).toBe(
        Buffer.byteLength(JSON.stringify({ device_external_id: 'beside', events: events(20) })),
      );
      expect(await rows(await deviceOf(p.projectId, 'beside'))).toBe(20);
    });

    it('a batch run again once its body is gone (a worker that died after storing it) is a replay', async () => {
      const p = await api.tenants.newProject();
      const res = await ingest(p.apiKey, { device_external_id: 'again', events: events(20) });
      await drained(queue);
      const { data } = await jobOf(res.body.batch_id);
      const again = await queue.add('ingest-batch', data, { jobId: `again-${randomUUID()}` });
      await drained(queue);
      expect(await again.getState()).toBe('completed');
      expect((await queue.getJob(again.id!))?.returnvalue).toMatchObject({
        kind: 'replay',
        inserted: 0,
      });
      expect(await rows(data.deviceId)).toBe(20);
    });

    it('a batch whose body is gone before it was stored is set aside, and the device goes on', async () => {
      const p = await api.tenants.newProject();
      const first = await ingest(p.apiKey, { device_external_id: 'lost', events: events(5) });
      await drained(queue);
      const { data } = await jobOf(first.body.batch_id);
      // The next number, queued without a body: what a Redis that lost data would hold.
      const batchId = randomUUID();
      const lost = await queue.add(
        'ingest-batch',
        { ...data, batchId, seq: data.seq + 1, acceptedAt: Date.now() },
        { jobId: `b-${data.deviceId}-${data.seq + 1}` },
      );
      await drained(queue);
      expect(await lost.getState()).toBe('failed');
      const rejected = await request(api.server)
        .get(`/projects/${p.projectId}/rejected-readings`)
        .set(p.headers)
        .expect(200);
      expect(rejected.body.items).toEqual([
        expect.objectContaining({
          batch_id: batchId,
          scope: 'batch',
          reason: expect.stringContaining('no longer in Redis'),
          payload_excerpt: null,
        }),
      ]);
      // The device's next batch is numbered past the lost one, which no longer holds it up.
      await ingest(p.apiKey, { device_external_id: 'lost', events: events(5, 100) }).expect(202);
      await drained(queue);
      expect(await rows(data.deviceId)).toBe(10);
    });
  });

  it('applies a device’s batches in the order the api accepted them', async () => {
    const p = await api.tenants.newProject();
    for (let i = 0; i < 12; i++) {
      await ingest(p.apiKey, { device_external_id: 'ordered', events: events(50, i * 50) }).expect(
        202,
      );
    }
    await drained(queue);
    const deviceId = await deviceOf(p.projectId, 'ordered');
    const [{ ingest_seq }] = await db.query(`SELECT ingest_seq FROM devices WHERE id = $1`, [
      deviceId,
    ]);
    expect(Number(ingest_seq)).toBe(12);
    expect(await rows(deviceId)).toBe(600);
  });
});
