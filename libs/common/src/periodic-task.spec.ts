import { Logger } from '@nestjs/common';
import { PeriodicTask } from './periodic-task';

describe('PeriodicTask', () => {
  it('runs one at a time, logs a failure and runs again at the next tick, and stop waits for a run', async () => {
    jest.useFakeTimers();
    try {
      const logger = { warn: jest.fn() } as unknown as Logger;
      let runs = 0;
      let finish: () => void = () => undefined;
      const task = new PeriodicTask(
        1000,
        () => {
          runs++;
          if (runs === 1) return Promise.reject(new Error('boom'));
          return new Promise<void>((resolve) => (finish = resolve));
        },
        logger,
        'duty failed',
      );
      task.start();
      await jest.advanceTimersByTimeAsync(1000);
      expect(logger.warn).toHaveBeenCalledWith({ err: 'boom' }, 'duty failed');
      await jest.advanceTimersByTimeAsync(1000); // run 2 starts and hangs
      await jest.advanceTimersByTimeAsync(3000); // its ticks are skipped
      expect(runs).toBe(2);
      let stopped = false;
      const stopping = task.stop().then(() => (stopped = true));
      await Promise.resolve();
      expect(stopped).toBe(false);
      finish();
      await stopping;
      await jest.advanceTimersByTimeAsync(5000);
      expect(runs).toBe(2);
    } finally {
      jest.useRealTimers();
    }
  });

  it('runs at once when started with now, then every period', async () => {
    jest.useFakeTimers();
    try {
      let runs = 0;
      const task = new PeriodicTask(
        1000,
        async () => runs++,
        { warn: jest.fn() } as unknown as Logger,
        'duty failed',
      );
      task.start({ now: true });
      expect(runs).toBe(1);
      await jest.advanceTimersByTimeAsync(1000);
      expect(runs).toBe(2);
      await task.stop();
    } finally {
      jest.useRealTimers();
    }
  });
});
