import { Injectable } from '@nestjs/common';
import { UnrecoverableError } from 'bullmq';
import { OutageService } from './outage.service';
import { consumerFor, JobHandlers, QueueHandler, queueConsumers } from './queue-consumer';
import { QUEUES } from './queue.constants';

const tuning = () => ({ concurrency: 1, lockDurationMs: 30000, connection: {}, prefix: 'q' });

function handlerOf<Q extends (typeof QUEUES)[keyof typeof QUEUES]>(queue: Q, name: string) {
  @Injectable()
  class Handler implements QueueHandler<Q> {
    static readonly queue = queue;
    readonly jobs = {} as JobHandlers<Q>;
  }
  Object.defineProperty(Handler, 'name', { value: name });
  return Handler;
}

const ALL = Object.values(QUEUES).map((q) => handlerOf(q, `${q}-handler`));

describe('queueConsumers', () => {
  it('makes one consumer per handler when every queue has exactly one', () => {
    const consumers = queueConsumers(ALL, tuning);
    expect(consumers).toHaveLength(ALL.length);
    expect((consumers[0] as { name: string }).name).toBe('telemetry-ingest-handlerConsumer');
  });

  it('fails at start when a queue has no handler', () => {
    expect(() => queueConsumers(ALL.slice(1), tuning)).toThrow(
      'no handler consumes queue "telemetry-ingest"',
    );
  });

  it('fails at start when a queue has two handlers, naming them', () => {
    const twice = [...ALL, handlerOf(QUEUES.ALERT_EVENTS, 'Second')];
    expect(() => queueConsumers(twice, tuning)).toThrow(
      'queue "alert-events" has 2 handlers: alert-events-handler, Second',
    );
  });

  it('fails at start on a handler of a queue the worker does not consume', () => {
    expect(() => queueConsumers(ALL, tuning, [QUEUES.TELEMETRY_INGEST])).toThrow(
      /consumes "rule-evaluation", not a queue of this worker/,
    );
  });
});

describe('the consumer host', () => {
  it('refuses a job name its handler does not know, for good (no retries)', async () => {
    const Consumer = consumerFor(ALL[0], tuning());
    const host = new Consumer({ jobs: {} } as never, {} as OutageService);
    Object.defineProperty(host, 'worker', { value: { name: 'telemetry-ingest' } });
    await expect(host.process({ name: 'nope' } as never)).rejects.toThrow(UnrecoverableError);
  });

  it('runs the handler of the job name and returns its result', async () => {
    const Consumer = consumerFor(ALL[0], tuning());
    const jobs = { 'ingest-batch': jest.fn(async () => 'stored') };
    const host = new Consumer({ jobs } as never, {} as OutageService);
    Object.defineProperty(host, 'worker', { value: { name: 'telemetry-ingest' } });
    await expect(host.process({ name: 'ingest-batch' } as never, 'tok')).resolves.toBe('stored');
    expect(jobs['ingest-batch']).toHaveBeenCalledWith({ name: 'ingest-batch' }, 'tok');
  });
});
