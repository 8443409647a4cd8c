import type { Queue } from 'bullmq';
import { Producer } from './producer';

/** A queue that records what it was given. */
function recording() {
  const added: unknown[] = [];
  const queue = {
    name: 'rule-evaluation',
    add: jest.fn(async (...args: unknown[]) => added.push(args)),
    addBulk: jest.fn(async (jobs: unknown[]) => added.push(...jobs)),
  } as unknown as Queue;
  return { queue, added };
}

describe('Producer', () => {
  it('adds jobs by name with their payload, one at a time or in bulk', async () => {
    const { queue, added } = recording();
    const producer = new Producer<'rule-evaluation'>(queue);
    const data = { projectId: 'p', deviceId: 'd', correlationId: 'c' };
    await producer.add('evaluate-device', data, { delay: 5 });
    await producer.addBulk([{ name: 'evaluate-device', data }]);
    expect(added).toEqual([
      ['evaluate-device', data, { delay: 5 }],
      { name: 'evaluate-device', data },
    ]);
    expect(producer.name).toBe('rule-evaluation');
  });

  it('refuses, at compile time, a job name or payload of another queue (checked by tsc in lint)', () => {
    const producer = new Producer<'rule-evaluation'>(recording().queue);
    const check = () => {
      // @ts-expect-error: not a job of rule-evaluation
      void producer.add('ingest-batch', { projectId: 'p', deviceId: 'd', correlationId: 'c' });
      // @ts-expect-error: the payload lacks deviceId
      void producer.add('evaluate-device', { projectId: 'p', correlationId: 'c' });
    };
    expect(check).toBeDefined();
  });
});
