import { loadReceiverConfigOrExit } from '@app/config';
import { NestFactory } from '@nestjs/core';
import { NestExpressApplication } from '@nestjs/platform-express';
import { Logger } from 'nestjs-pino';
import { configureReceiver } from './configure-receiver';
import { ReceiverModule } from './receiver.module';

/**
 * The local webhook receiver (a development tool, not part of a deployment): shows what
 * the worker delivers and whether the signatures verify. RECEIVER_HOST defaults to
 * 127.0.0.1, so nothing outside this machine can read the page or post to it.
 */
async function bootstrap(): Promise<void> {
  const config = loadReceiverConfigOrExit('receiver');
  const app = await NestFactory.create<NestExpressApplication>(ReceiverModule.forRoot(config), {
    bodyParser: false,
    bufferLogs: true,
    // Don't let a browser's keep-alive or a delayed answer hold up shutdown.
    forceCloseConnections: true,
  });
  configureReceiver(app);
  await app.listen(config.port, config.host);
  app
    .get(Logger)
    .log(`receiver listening on ${await app.getUrl()} with ${config.secrets.length} secret(s)`);
}

void bootstrap();
