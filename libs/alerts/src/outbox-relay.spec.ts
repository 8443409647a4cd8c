import type { WorkerRoles } from '@app/config';
import type { Producer } from '@app/queue';
import type { DataSource } from 'typeorm';
import type { AlertEventsRepository } from './alert-events.repository';
import { OutboxRelay } from './outbox-relay.service';

/**
 * The relay's one-run-at-a-time rule: a request made while a run is going is answered by a
 * run that starts after it, so an event committed during a run is never left to the sweep.
 */
describe('OutboxRelay.relay', () => {
  /** An outbox in memory, and a queue whose first hand-over waits until released. */
  function setUp() {
    const committed: string[] = [];
    const relayed: string[] = [];
    const handedOn: string[][] = [];
    let release!: () => void;
    const firstHandOver = new Promise<void>((r) => (release = r));
    const events = {
      takeForRelay: async () =>
        committed.filter((id) => !relayed.includes(id)).map((id) => ({ id, projectId: 'p' })),
      markRelayed: async (_em: unknown, ids: string[]) => void relayed.push(...ids),
    };
    const queue = {
      addBulk: async (jobs: Array<{ data: { eventId: string } }>) => {
        handedOn.push(jobs.map((j) => j.data.eventId));
        if (handedOn.length === 1) await firstHandOver;
      },
    };
    const dataSource = { transaction: (fn: (em: unknown) => unknown) => fn({}) };
    const relay = new OutboxRelay(
      dataSource as unknown as DataSource,
      events as unknown as AlertEventsRepository,
      queue as unknown as Producer<'alert-events'>,
      { runs: () => false } as unknown as WorkerRoles,
    );
    return { relay, committed, handedOn, release };
  }

  it('relays an event committed while a run is going, in a run after it', async () => {
    const { relay, committed, handedOn, release } = setUp();
    committed.push('a');
    const first = relay.relay();
    await new Promise((r) => setImmediate(r));
    expect(handedOn).toEqual([['a']]); // the first run read the outbox and is handing on
    committed.push('b');
    const second = relay.relay();
    release();
    expect(await first).toBe(1);
    expect(await second).toBe(1);
    expect(handedOn).toEqual([['a'], ['b']]);
  });

  it('answers every request made during one run with one more run', async () => {
    const { relay, committed, handedOn, release } = setUp();
    committed.push('a');
    const first = relay.relay();
    await new Promise((r) => setImmediate(r));
    committed.push('b', 'c');
    const during = [relay.relay(), relay.relay(), relay.relay()];
    release();
    await first;
    expect(await Promise.all(during)).toEqual([2, 2, 2]);
    expect(handedOn).toEqual([['a'], ['b', 'c']]);
    // Nothing pending: a later request runs at once and finds nothing.
    expect(await relay.relay()).toBe(0);
  });
});
