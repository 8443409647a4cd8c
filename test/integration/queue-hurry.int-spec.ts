import { Producer } from '@app/queue';
import { Queue, Worker } from 'bullmq';
import { openQueue } from '../support/worker';

/**
 * `Producer.hurry`: a delayed job moved to the front of the wait list, the next one a
 * worker takes, through BullMQ's own scripts, on the run's real Redis. The ingest worker
 * uses it for a device's next batch once the batch it waited for is stored: promoted
 * plainly, that batch would join the back of the backlog, and under a backlog a device
 * whose batches got out of order (a worker killed mid-batch) advanced one batch per pass
 * through the whole queue (docs/reliability.md, "Soak with chaos").
 */
describe('Producer.hurry (integration)', () => {
  let queue: Queue;
  let producer: Producer<'telemetry-ingest'>;

  beforeAll(() => {
    queue = openQueue(`hurry-${process.pid}`);
    producer = new Producer(queue);
  });
  afterAll(async () => {
    await queue.obliterate({ force: true });
    await queue.close();
  });

  const add = (id: string, delay = 0) => queue.add('ingest-batch', { id }, { jobId: id, delay });

  it('moves a delayed or waiting job ahead of every waiting one', async () => {
    await add('a');
    await add('b');
    await add('c', 60000);
    await add('d', 60000);
    expect(await producer.getJobState('a')).toBe('waiting');
    expect(await producer.getJobState('c')).toBe('delayed');
    expect(await producer.getJobState('none')).toBe('unknown');

    expect(await producer.hurry('c')).toBe(true);
    expect(await producer.hurry('none')).toBe(false);
    expect(await producer.getJobState('c')).toBe('waiting');
    expect(await producer.getJobState('d')).toBe('delayed');

    const order: string[] = [];
    const worker = new Worker(
      queue.name,
      async (job) => {
        order.push(job.id!);
      },
      { connection: queue.opts.connection, prefix: queue.opts.prefix, concurrency: 1 },
    );
    try {
      for (let i = 0; i < 200 && order.length < 3; i++) await new Promise((r) => setTimeout(r, 25));
    } finally {
      await worker.close();
    }
    expect(order).toEqual(['c', 'a', 'b']);
    // A waiting job goes to the front too.
    await add('e');
    await add('f');
    expect(await producer.hurry('f')).toBe(true);
    const next: string[] = [];
    const again = new Worker(
      queue.name,
      async (job) => {
        next.push(job.id!);
      },
      { connection: queue.opts.connection, prefix: queue.opts.prefix, concurrency: 1 },
    );
    try {
      for (let i = 0; i < 200 && next.length < 2; i++) await new Promise((r) => setTimeout(r, 25));
    } finally {
      await again.close();
    }
    expect(next).toEqual(['f', 'e']);
    expect(await producer.getJobState('d')).toBe('delayed');
    // Its data was never needed, and is intact.
    expect((await queue.getJob('c'))?.data).toEqual({ id: 'c' });
  });
});
