import { DynamicModule, Module, Type } from '@nestjs/common';
import type { EntityManager } from 'typeorm';

/**
 * The fan-out of alert events where they are written: the worker wires the webhooks' one
 * in ({@link EventFanOutModule.by}; libs/webhooks depends on this lib, not the other way
 * round), so an evaluation that opens or resolves an alert creates the event's deliveries
 * in its own transaction instead of leaving the event to the outbox relay, the
 * alert-events queue and a fan-out transaction of its own: three hops fewer between a
 * reading and its webhook. Without one (the api, a test module), events are relayed.
 */
export const EVENT_FAN_OUT = Symbol('EVENT_FAN_OUT');

export interface EventFanOut {
  /**
   * In the transaction that wrote them: fans out the undispatched events of `alertIds`
   * (their deliveries created, the events marked dispatched, as the alert-events queue's
   * fan-out does). Returns what to do once that transaction committed (enqueue the
   * deliveries, start reminder chains); it never throws, and what it fails to do the
   * delivery and reminder sweeps repair.
   */
  fanOutWritten(em: EntityManager, alertIds: string[]): Promise<() => Promise<void>>;
}

/** Makes `fanOut` (exported by `module`) the process's {@link EVENT_FAN_OUT}. */
@Module({})
export class EventFanOutModule {
  static by(module: Type, fanOut: Type<EventFanOut>): DynamicModule {
    return {
      module: EventFanOutModule,
      global: true,
      imports: [module],
      providers: [{ provide: EVENT_FAN_OUT, useExisting: fanOut }],
      exports: [EVENT_FAN_OUT],
    };
  }
}
