import { loadConfigOrExit, tuneHeap } from '@app/config';
import { NestFactory } from '@nestjs/core';
import { Logger } from 'nestjs-pino';
import { WorkerModule } from './worker.module';

/**
 * Starts the worker: an application context (no HTTP adapter), shutdown hooks so SIGTERM
 * lets in-flight jobs finish (workers close before queues), and a hard stop if draining
 * takes longer than SHUTDOWN_GRACE_MS.
 */
async function bootstrap(): Promise<void> {
  tuneHeap();
  const config = loadConfigOrExit('worker');
  const app = await NestFactory.createApplicationContext(WorkerModule.forRoot(config), {
    bufferLogs: true,
  });
  const logger = app.get(Logger);
  app.useLogger(logger);
  app.enableShutdownHooks(['SIGTERM', 'SIGINT']);
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      logger.log(`${signal} received: draining jobs`);
      setTimeout(() => {
        logger.error(`still draining after ${config.worker.shutdownGraceMs} ms; exiting`);
        process.exit(1);
      }, config.worker.shutdownGraceMs).unref();
    });
  }
  await app.init();
  logger.log('worker started');
}

void bootstrap();
