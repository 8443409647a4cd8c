import { EnvSource } from '@app/config';
import { DataSource } from 'typeorm';
import { RunningApi, startApi } from './api';
import { Pipeline, RunningWorker, startWorker } from './worker';

/** The api and a worker in this process, the queues between them and the api's database. */
export interface Stack {
  api: RunningApi;
  worker: RunningWorker;
  pipeline: Pipeline;
  db: DataSource;
  /** Worker, api, then the queues. */
  close(): Promise<void>;
}

/** What most e2e suites boot in `beforeAll`, all with the same overrides (namespace, limits). */
export async function startStack(overrides: EnvSource = {}): Promise<Stack> {
  const api = await startApi(overrides);
  const worker = await startWorker(overrides);
  const pipeline = new Pipeline(overrides);
  return {
    api,
    worker,
    pipeline,
    db: api.app.get(DataSource),
    close: async () => {
      await worker.close();
      await api.close();
      await pipeline.close();
    },
  };
}
