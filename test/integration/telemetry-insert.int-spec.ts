import { buildDataSourceOptions } from '@app/database';
import { TelemetryRepository, UnsavedFirstTryFailed } from '@app/telemetry';
import { batchAsStored } from '@app/telemetry/batch-readings';
import { cutBatch } from '@app/telemetry/cut-batch';
import { testRunEnv } from '@app/testing';
import { batchBodies, cursorAt, evaluationCursor } from '@app/testing/batch-bodies';
import fc from 'fast-check';
import { randomUUID } from 'node:crypto';
import { DataSource, EntityManager } from 'typeorm';

const T0 = Date.UTC(2025, 6, 1);
const iso = (s: number) => new Date(T0 + s * 1000).toISOString();
const batch = (events: Array<[second: number, t: number]>) =>
  JSON.stringify({
    device_external_id: 'x',
    events: events.map(([s, t]) => ({ ts: iso(s), data: { t } })),
  });

/** One connection pool for the file's two describes. */
let db: DataSource;
let repo: TelemetryRepository;

beforeAll(async () => {
  db = new DataSource(
    buildDataSourceOptions({ url: testRunEnv().databaseUrl, poolSize: 2 }, 'insert-test'),
  );
  await db.initialize();
  repo = new TelemetryRepository(db);
});
afterAll(() => db?.destroy());

/**
 * `work` in a transaction of its own, every statement it sends pushed to `statements`:
 * through the transaction's runner, and to the connection itself (the COPY goes there;
 * that spy goes with the transaction, not with the pooled connection).
 */
function recordingStatements<T>(
  statements: string[],
  work: (em: EntityManager) => Promise<T>,
): Promise<T> {
  return db.transaction(async (em) => {
    const runner = em.queryRunner!;
    const query = runner.query.bind(runner);
    jest.spyOn(runner, 'query').mockImplementation((sql: string, ...rest: unknown[]) => {
      statements.push(sql);
      return (query as (sql: string, ...rest: unknown[]) => Promise<unknown>)(sql, ...rest);
    });
    const client = (await runner.connect()) as { query: (...args: unknown[]) => unknown };
    const clientQuery = client.query.bind(client);
    const spy = jest.spyOn(client, 'query').mockImplementation((...args: unknown[]) => {
      const q = args[0];
      statements.push(typeof q === 'string' ? q : String((q as { text?: string }).text));
      return clientQuery(...args);
    });
    try {
      return await work(em);
    } finally {
      spy.mockRestore();
    }
  });
}

/**
 * TelemetryRepository.insertBatch tries a plain INSERT first and falls back to the
 * deduplicating statement on a unique violation or a refused value: whichever path a batch
 * takes, what is stored and counted is the same, and the transaction goes on after a
 * fallback.
 */
describe('storing a batch (integration)', () => {
  /** One batch stored in a transaction of its own, as the worker does. */
  const insert = (deviceId: string, payload: string, evaluatedUntil: Date | null = null) =>
    db.transaction((em) => repo.insertBatch(em, deviceId, payload, evaluatedUntil));

  const stored = async (deviceId: string) =>
    (
      await db.query(
        `SELECT (extract(epoch FROM ts) * 1000)::float8 AS ms, (data ->> 't')::float8 AS t
           FROM telemetry WHERE device_id = $1 ORDER BY ts`,
        [deviceId],
      )
    ).map((r: { ms: number; t: number }) => [(Number(r.ms) - T0) / 1000, Number(r.t)]);

  it('stores new readings and counts those at or before the evaluation cursor as late', async () => {
    const device = randomUUID();
    const result = await insert(
      device,
      batch([
        [1, 10],
        [2, 20],
        [3, 30],
      ]),
      new Date(T0 + 2000),
    );
    expect(result).toEqual({ inserted: 3, late: 2 });
    expect(await stored(device)).toEqual([
      [1, 10],
      [2, 20],
      [3, 30],
    ]);
  });

  it('keeps the first event of a ts repeated within the batch', async () => {
    const device = randomUUID();
    const result = await insert(
      device,
      batch([
        [1, 10],
        [2, 20],
        [1, 99],
        [3, 30],
      ]),
    );
    expect(result).toEqual({ inserted: 3, late: 0 });
    expect(await stored(device)).toEqual([
      [1, 10],
      [2, 20],
      [3, 30],
    ]);
  });

  it('keeps the first event of a millisecond repeated within the batch, whatever its microseconds', async () => {
    const device = randomUUID();
    // Both are stored at 00:00:01.001 (timestamptz(3) rounds to the millisecond): the same
    // reading, so the first in the batch wins, not the earlier in time. Found by the alert
    // oracle (alert-oracle.int-spec.ts); the later one was stored before.
    const payload = JSON.stringify({
      events: [
        { ts: '2025-07-01T00:00:01.0010Z', data: { t: 10 } },
        { ts: '2025-07-01T00:00:01.000600Z', data: { t: 99 } },
        { ts: '2025-07-01T00:00:01.9996Z', data: { t: 20 } },
        { ts: iso(2), data: { t: 98 } },
      ],
    });
    const result = await insert(device, payload);
    expect(result).toEqual({ inserted: 2, late: 0 });
    expect(await stored(device)).toEqual([
      [1.001, 10],
      [2, 20],
    ]);
  });

  it('adds only the new readings of a batch that overlaps stored ones, and the transaction goes on', async () => {
    const device = randomUUID();
    await insert(
      device,
      batch([
        [1, 10],
        [2, 20],
      ]),
    );
    const result = await db.transaction(async (em) => {
      const r = await repo.insertBatch(
        em,
        device,
        batch([
          [2, 99],
          [3, 30],
          [4, 40],
        ]),
        new Date(T0 + 3000),
      );
      // The same transaction still works after the fallback, and commits everything.
      await repo.insertBatch(em, device, batch([[5, 50]]), null);
      return r;
    });
    expect(result).toEqual({ inserted: 2, late: 1 });
    expect(await stored(device)).toEqual([
      [1, 10],
      [2, 20],
      [3, 30],
      [4, 40],
      [5, 50],
    ]);
  });

  it('stores nothing again for a replayed batch', async () => {
    const device = randomUUID();
    const payload = batch([
      [1, 10],
      [2, 20],
    ]);
    await insert(device, payload);
    const again = await insert(device, payload);
    expect(again).toEqual({ inserted: 0, late: 0 });
    expect(await stored(device)).toEqual([
      [1, 10],
      [2, 20],
    ]);
  });

  it('drops a duplicate PostgreSQL would refuse, as the deduplicating statement always did', async () => {
    const device = randomUUID();
    // The second event of ts 1 has no data (a NOT NULL violation, not a duplicate key, for
    // the plain INSERT): the first event of a ts wins, so it is never stored or refused.
    const payload = JSON.stringify({
      events: [{ ts: iso(1), data: { t: 10 } }, { ts: iso(1) }, { ts: iso(2), data: { t: 20 } }],
    });
    const result = await insert(device, payload);
    expect(result).toEqual({ inserted: 2, late: 0 });
    expect(await stored(device)).toEqual([
      [1, 10],
      [2, 20],
    ]);
  });

  it('salvages a batch with a refused value and duplicates: the first of each ts, the refused one set aside', async () => {
    const device = randomUUID();
    await insert(device, batch([[4, 40]]));
    const events = [
      { ts: iso(1), data: { t: 10 } },
      { ts: '2025-07-01T00:00:02+20:00', data: { t: 20 } }, // refused by PostgreSQL
      { ts: iso(1), data: { t: 99 } },
      { ts: iso(3), data: { t: 30 } },
      { ts: iso(4), data: { t: 98 } }, // stored before
    ];
    const result = await db.transaction((em) =>
      repo.insertSalvaging(em, device, JSON.stringify({ events }), new Date(T0 + 1000)),
    );
    expect(result).toMatchObject({ inserted: 2, late: 1 });
    expect(result.rejected.map((r) => [r.index, r.sqlstate])).toEqual([[1, '22009']]);
    expect(await stored(device)).toEqual([
      [1, 10],
      [3, 30],
      [4, 40],
    ]);
  });

  it('leaves a value PostgreSQL refuses to the caller, as a data error', async () => {
    const device = randomUUID();
    const bad = JSON.stringify({ events: [{ ts: '2025-01-01T00:00:00+20:00', data: { t: 1 } }] });
    await expect(insert(device, bad)).rejects.toMatchObject({ code: '22009' });
    expect(await stored(device)).toEqual([]);
  });

  /**
   * `insertBatch` in a transaction of its own with the hint that nothing is stored after
   * the cursor, and every statement it sent (the COPY goes to the connection itself).
   */
  async function insertHinted(
    device: string,
    payload: string,
    cursor: Date | null,
  ): Promise<{ statements: string[]; result: unknown }> {
    const statements: string[] = [];
    const result = await recordingStatements(statements, (em) =>
      repo.insertBatch(em, device, payload, cursor, ['t'], true),
    ).catch((err: unknown) => err);
    return { statements, result };
  }

  it('stores new readings in order without a savepoint when nothing is stored after the cursor', async () => {
    const device = randomUUID();
    await insert(device, batch([[1, 10]]));
    const { statements, result } = await insertHinted(
      device,
      batch([
        [2, 20],
        [3, 30],
      ]),
      new Date(T0 + 1000),
    );
    expect(result).toEqual({
      inserted: 2,
      late: 0,
      readings: [2, 3].map((s) => ({ ts: T0 + s * 1000, data: { t: s * 10 } })),
    });
    // The COPY, then the transaction's commit.
    expect(statements).toEqual(['COPY telemetry (device_id, ts, data) FROM STDIN', 'COMMIT']);
    expect(await stored(device)).toEqual([
      [1, 10],
      [2, 20],
      [3, 30],
    ]);
  });

  it.each([
    [
      'a late event',
      [
        [1, 11],
        [4, 40],
      ],
      1,
    ],
    [
      'events out of order',
      [
        [5, 50],
        [4, 40],
      ],
      2,
    ],
    [
      'a ts twice',
      [
        [4, 40],
        [4, 41],
      ],
      1,
    ],
  ])('keeps the savepoint, with the hint, for %s', async (_what, events, inserted) => {
    const device = randomUUID();
    await insert(device, batch([[1, 10]]));
    const { statements, result } = await insertHinted(
      device,
      batch(events as Array<[number, number]>),
      new Date(T0 + 1000),
    );
    expect(result).toMatchObject({ inserted });
    expect(statements[0]).toBe('SAVEPOINT fast_insert');
  });

  it('without the savepoint, a duplicate or a refused value loses the transaction and says so', async () => {
    // A wrong hint: a reading after the cursor is stored. The COPY meets it.
    const device = randomUUID();
    await insert(device, batch([[2, 20]]));
    const wrong = await insertHinted(
      device,
      batch([
        [2, 21],
        [3, 30],
      ]),
      new Date(T0 + 1000),
    );
    expect(wrong.result).toBeInstanceOf(UnsavedFirstTryFailed);
    expect((wrong.result as UnsavedFirstTryFailed).cause).toMatchObject({ code: '23505' });
    // The transaction rolled back; run again without the hint, the batch stores as always.
    await expect(
      insert(
        device,
        batch([
          [2, 21],
          [3, 30],
        ]),
        new Date(T0 + 1000),
      ),
    ).resolves.toEqual({ inserted: 1, late: 0 });
    expect(await stored(device)).toEqual([
      [2, 20],
      [3, 30],
    ]);

    const refused = await insertHinted(
      randomUUID(),
      JSON.stringify({ events: [{ ts: '2025-07-01T00:00:02+20:00', data: { t: 1 } }] }),
      null,
    );
    expect(refused.result).toBeInstanceOf(UnsavedFirstTryFailed);
    expect((refused.result as UnsavedFirstTryFailed).cause).toMatchObject({ code: '22009' });
  });

  it('returns the readings it stored after the cursor as the evaluation read-back would read them, on both paths', async () => {
    const device = randomUUID();
    const events = (from: number, values: unknown[]) =>
      JSON.stringify({
        events: values.map((t, i) => ({ ts: iso(from + i), data: { t, u: 1 } })),
      });
    const cursor = new Date(T0 + 2000);
    const readBack = () =>
      db.transaction((em) => repo.readingsAfter(em, device, cursor, ['t', 'v'], 100));
    // Fast path: one late reading, then JSON numbers and every other kind of JSON value
    // (only numbers are read as numbers; a numeric string is not one).
    const values = [1.5, 'x', 1e308, null, 7, '7', true, { a: 1 }, [1], '', -0.25];
    const first = await db.transaction((em) =>
      repo.insertBatch(em, device, events(2, values), cursor, ['t', 'v']),
    );
    expect(first.inserted).toBe(values.length);
    expect(first.late).toBe(1);
    expect(first.readings).toEqual(await readBack());
    expect(first.readings!.map((r) => r.data)).toEqual([
      { t: null, v: null },
      { t: 1e308, v: null },
      { t: null, v: null },
      { t: 7, v: null },
      { t: null, v: null },
      { t: null, v: null },
      { t: null, v: null },
      { t: null, v: null },
      { t: null, v: null },
      { t: -0.25, v: null },
    ]);
    // Deduplicating path (overlaps what is stored): only the new rows come back.
    const second = await db.transaction((em) =>
      repo.insertBatch(em, device, events(12, [70, 8, 9]), cursor, ['t', 'v']),
    );
    expect(second).toMatchObject({ inserted: 2, late: 0 });
    expect(second.readings!.map((r) => [r.ts, r.data.t])).toEqual([
      [T0 + 13000, 8],
      [T0 + 14000, 9],
    ]);
  });
});

/**
 * The plain INSERT's result is worked out from the payload ({@link batchAsStored}) instead
 * of returned by PostgreSQL. A differential check: random batches (offsets, fraction
 * digits, every kind of JSON value, number literals JavaScript and numeric spell
 * differently, duplicated keys) through both; wherever the payload is read, it says what
 * PostgreSQL's RETURNING says, and it declines only what it must leave to PostgreSQL.
 */
describe('a batch read from its payload, against PostgreSQL (integration, property)', () => {
  const KEYS = ['t', 'u', '__proto__', 'constructor', 'toString'];
  /** Number literals as sent, some spelt differently by JSON.stringify and by numeric. */
  const LITERALS = [
    '1.50',
    '1e2',
    '-0',
    '-0.0',
    '1E-7',
    '0.1000000000000000055511151231257827',
    '123456789012345678901234567890',
    '1e308',
    '1e309',
    '-1e-400',
    '-5e-325',
    '5e-324',
    '1e-400',
    '-42',
    '0',
  ];
  const value = fc.oneof(
    fc.constantFrom(...LITERALS),
    fc.double({ noNaN: true, noDefaultInfinity: true }).map((d) => JSON.stringify(d)),
    fc.integer().map(String),
    fc.constantFrom('"45.5"', '"x"', 'true', 'false', 'null', '{"a":1}', '[1]', '""'),
  );
  /** An event's JSON text: a ts 2020-2025 (partitions exist for the past) written with an offset and 0-9 fraction digits. */
  const event = fc
    .record({
      ms: fc.integer({ min: Date.UTC(2020, 0, 1), max: Date.UTC(2026, 0, 1) }),
      offset: fc.option(fc.integer({ min: -15 * 60 + 1, max: 15 * 60 - 1 }), { nil: undefined }),
      digits: fc.oneof(
        { arbitrary: fc.constantFrom(0, 1, 2, 3), weight: 19 },
        { arbitrary: fc.integer({ min: 4, max: 9 }), weight: 1 },
      ),
      extra: fc.integer({ min: 0, max: 999999 }),
      fields: fc.array(fc.tuple(fc.constantFrom(...KEYS), value), { maxLength: 4 }),
    })
    .map(({ ms, offset, digits, extra, fields }) => {
      const local = new Date(ms + (offset ?? 0) * 60000).toISOString();
      const fraction = (local.slice(20, 23) + String(extra).padStart(6, '0')).slice(0, digits);
      const zone =
        offset === undefined
          ? 'Z'
          : `${offset < 0 ? '-' : '+'}${String(Math.floor(Math.abs(offset) / 60)).padStart(2, '0')}:${String(Math.abs(offset) % 60).padStart(2, '0')}`;
      const ts = `${local.slice(0, 19)}${digits ? `.${fraction}` : ''}${zone}`;
      const data = fields.map(([k, v]) => `${JSON.stringify(k)}:${v}`).join(',');
      // The instant as written (fewer than three digits cut the milliseconds).
      const written = digits >= 3 ? ms : ms - (ms % 10 ** (3 - digits));
      return { ms: written, text: `{"ts":"${ts}","data":{${data}}}` };
    });
  // Distinct milliseconds: a batch with two events of one millisecond fails the plain INSERT.
  const batch = fc.uniqueArray(event, { minLength: 1, maxLength: 30, selector: (e) => e.ms });

  it('says what the RETURNING says, or leaves the batch to PostgreSQL', async () => {
    let read = 0;
    await fc.assert(
      fc.asyncProperty(
        batch,
        evaluationCursor,
        fc.subarray(KEYS),
        async (events, choice, metrics) => {
          const payload = `{"device_external_id":"x","events":[${events.map((e) => e.text).join(',')}]}`;
          const cursor = cursorAt(
            choice,
            events.map((e) => e.ms),
          );
          const known = batchAsStored(payload, cursor, metrics);
          // Declined only for a fraction PostgreSQL rounds (more than three digits).
          const rounded = events.some((e) => /\.\d{4,}/.test(e.text.slice(7, 40)));
          expect(known === null).toBe(rounded);
          if (!known) return;
          read++;
          const fromPostgres = await db.transaction((em) =>
            repo.insertDeduplicating(em, randomUUID(), payload, cursor, metrics),
          );
          expect(known).toEqual(fromPostgres);
        },
      ),
      { numRuns: 150 },
    );
    expect(read).toBeGreaterThan(50);
  }, 60_000);

  it('stores a clean batch with one COPY, no INSERT, and no second try', async () => {
    const statements: string[] = [];
    const payload = JSON.stringify({
      events: [1, 2, 3].map((s) => ({ ts: new Date(T0 + s * 1000).toISOString(), data: { t: s } })),
    });
    const device = randomUUID();
    const result = await recordingStatements(statements, (em) =>
      repo.insertBatch(em, device, payload, new Date(T0 + 1000), ['t']),
    );
    expect(result).toEqual({
      inserted: 3,
      late: 1,
      readings: [2, 3].map((s) => ({ ts: T0 + s * 1000, data: { t: s } })),
    });
    const writes = statements.filter((q) => /INSERT INTO telemetry|COPY telemetry/.test(q));
    expect(writes).toEqual(['COPY telemetry (device_id, ts, data) FROM STDIN']);
    expect(statements.filter((q) => /ROLLBACK/.test(q))).toEqual([]);
    const rows = await db.query(`SELECT data FROM telemetry WHERE device_id = $1 ORDER BY ts`, [
      device,
    ]);
    expect(rows.map((r: { data: unknown }) => r.data)).toEqual([{ t: 1 }, { t: 2 }, { t: 3 }]);
  });
});

/**
 * The COPY cuts each event's `ts` and `data` out of the body as written (cutBatch): what it
 * stores must be what `jsonb_to_recordset` of the whole body stores, whatever the JSON text
 * looks like: whitespace between tokens, keys in any order and repeated, escapes, strings
 * holding brackets and quotes, nesting.
 */
describe('a batch cut from its body for COPY, against the INSERT (integration, property)', () => {
  const storedRows = (device: string) =>
    db.query(
      `SELECT (extract(epoch FROM ts) * 1000)::float8 AS ms, data::text AS data
         FROM telemetry WHERE device_id = $1 ORDER BY ts`,
      [device],
    );

  it('stores what the INSERT from jsonb_to_recordset stores', async () => {
    let copied = 0;
    await fc.assert(
      fc.asyncProperty(batchBodies(), async (payload) => {
        expect(() => JSON.parse(payload)).not.toThrow();
        const [viaCopy, viaInsert] = [randomUUID(), randomUUID()];
        const cut = cutBatch(payload, viaCopy, null) !== null;
        if (cut) copied++;
        // A body it cuts is stored by the COPY alone: a cut PostgreSQL refused would fall
        // back to the deduplicating statement and hide the mistake. (The others take the
        // plain INSERT.)
        const fellBack = jest.spyOn(repo, 'insertDeduplicating');
        try {
          await db.transaction((em) => repo.insertBatch(em, viaCopy, payload, null));
          if (cut) expect(fellBack).not.toHaveBeenCalled();
        } finally {
          fellBack.mockRestore();
        }
        await db.transaction((em) => repo.insertDeduplicating(em, viaInsert, payload, null));
        const [a, b] = [await storedRows(viaCopy), await storedRows(viaInsert)];
        expect(a.length).toBeGreaterThan(0);
        expect(a).toEqual(b);
      }),
      { numRuns: 150 },
    );
    // Most bodies take the COPY (the others have an escaped key or ts).
    expect(copied).toBeGreaterThan(100);
  }, 60_000);
});
