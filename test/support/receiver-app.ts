import { EnvSource, loadReceiverConfig } from '@app/config';
import { NestFactory } from '@nestjs/core';
import { NestExpressApplication } from '@nestjs/platform-express';
import { configureReceiver } from '@receiver/configure-receiver';
import { ReceiverModule } from '@receiver/receiver.module';
import { AddressInfo } from 'node:net';

export interface RunningReceiverApp {
  /** e.g. `http://127.0.0.1:41234`, no trailing slash. */
  url: string;
  app: NestExpressApplication;
  close(): Promise<void>;
}

/**
 * The real local webhook receiver (apps/receiver: ReceiverModule + configureReceiver, as
 * in its main.ts) in this process, on a free loopback port. It needs neither PostgreSQL
 * nor Redis. (Not to be confused with `TestReceiver` in ./subscriber, a bare recording
 * endpoint for the delivery tests.)
 */
export async function startReceiverApp(overrides: EnvSource = {}): Promise<RunningReceiverApp> {
  const config = loadReceiverConfig({
    RECEIVER_HOST: '127.0.0.1',
    RECEIVER_PORT: '0',
    RECEIVER_SECRETS: '',
    LOG_LEVEL: 'silent',
    ...overrides,
  });
  const app = await NestFactory.create<NestExpressApplication>(ReceiverModule.forRoot(config), {
    bodyParser: false,
    logger: false,
    forceCloseConnections: true,
  });
  configureReceiver(app);
  await app.listen(config.port, config.host);
  const { port } = app.getHttpServer().address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, app, close: () => app.close() };
}
