import { asProjectId } from '@app/common';
import { MetricsService } from '@app/observability';
import { ABANDONED_BODY_MS } from './ingest-backlog';
import { TelemetryIntakeService } from './telemetry-intake.service';

/** The intake over fakes: Redis, the queue and the tenancy repositories always answer. */
function intake() {
  const findByExternalId = jest.fn(async (projectId: string, externalId: string) => ({
    id: `${projectId}/${externalId}`,
  }));
  const add = jest.fn(async (): Promise<unknown> => ({}));
  const release = jest.fn(async () => 0);
  const config = {
    ingest: {
      backlogMaxJobs: 1000,
      backlogMaxBytes: 1e9,
      projectMaxJobs: 100,
      projectMaxBytes: 1e8,
    },
    quotas: { devicesPerProject: 10 },
  };
  const service = new TelemetryIntakeService(
    {
      add,
      queue: {
        toKey: (id: string) => `q:${id}`,
        getJobCounts: async () => ({ waiting: 0, active: 0, delayed: 0, prioritized: 0 }),
      },
    } as any,
    { client: { get: async () => '0', set: async () => 'OK' } } as any,
    { findByExternalId, register: jest.fn() } as any,
    { findById: jest.fn() } as any,
    { appliedSeq: async () => 0 } as any,
    {
      admit: async () => ({ kind: 'admitted', seq: 1, jobIdTaken: false }),
      release,
      totalBytesKey: 'bytes',
    } as any,
    { get: (key: keyof typeof config) => config[key] } as any,
    new MetricsService(),
  );
  return { service, findByExternalId, add, release };
}

const body = (device: string) => ({
  device_external_id: device,
  events: [{ ts: '2025-01-01T12:00:00Z', data: { t: 1 } }],
});

describe('TelemetryIntakeService device cache', () => {
  const p1 = asProjectId('p1');
  const p2 = asProjectId('p2');

  it('looks a device up once, then answers from the cache', async () => {
    const { service, findByExternalId, add } = intake();
    await service.accept(p1, { body: body('d1'), correlationId: 'c1' });
    await service.accept(p1, { body: body('d1'), correlationId: 'c2' });
    expect(findByExternalId).toHaveBeenCalledTimes(1);
    expect(add).toHaveBeenCalledTimes(2);
    expect(add).toHaveBeenLastCalledWith(
      'ingest-batch',
      expect.objectContaining({ projectId: 'p1', deviceId: 'p1/d1', seq: 1 }),
      { jobId: 'b-p1/d1-1' },
    );
  });

  it('keys devices by project: the same external id elsewhere is another device', async () => {
    const { service, findByExternalId, add } = intake();
    await service.accept(p1, { body: body('d1'), correlationId: 'c1' });
    await service.accept(p2, { body: body('d1'), correlationId: 'c2' });
    expect(findByExternalId.mock.calls).toEqual([
      ['p1', 'd1'],
      ['p2', 'd1'],
    ]);
    expect(add).toHaveBeenLastCalledWith(
      'ingest-batch',
      expect.objectContaining({ deviceId: 'p2/d1' }),
      expect.anything(),
    );
  });
});

describe('TelemetryIntakeService enqueue', () => {
  const p1 = asProjectId('p1');

  it('queues the bytes as received, without a BOM, and the job without them', async () => {
    const { service, add } = intake();
    const raw = Buffer.from(`\uFEFF${JSON.stringify(body('d1'))}`);
    await service.accept(p1, { body: body('d1'), raw, correlationId: 'c1' });
    const [, data] = add.mock.calls[0] as unknown as [string, Record<string, unknown>];
    expect(data).not.toHaveProperty('payload');
    expect(data.bytes).toBe(raw.length - 3);
  });

  it('gives the place back when the job could not be added, keeping the body an hour (the job may be there)', async () => {
    const { service, add, release } = intake();
    add.mockRejectedValueOnce(new Error('connection lost'));
    await expect(
      service.accept(p1, { body: body('d1'), correlationId: 'c1' }),
    ).rejects.toMatchObject({
      code: 'unavailable',
    });
    await new Promise((r) => setImmediate(r));
    expect(release).toHaveBeenCalledWith(
      expect.objectContaining({ projectId: 'p1', deviceId: 'p1/d1', seq: 1 }),
      ABANDONED_BODY_MS,
    );
  });

  it('accepts a plain batch read from its bytes, unparsed, and queues the bytes', async () => {
    const { service, add } = intake();
    const raw = Buffer.from(JSON.stringify(body('d1')));
    const plain = { deviceExternalId: 'd1', events: 1, nonNumeric: 0 };
    await expect(
      service.accept(p1, { body: undefined, raw, plain, correlationId: 'c1' }),
    ).resolves.toMatchObject({ accepted: 1, non_numeric_values: 0 });
    const [, data] = add.mock.calls[0] as unknown as [string, Record<string, unknown>];
    expect(data).toMatchObject({ deviceId: 'p1/d1', bytes: raw.length, events: 1 });
  });
});
