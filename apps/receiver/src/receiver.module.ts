import { ReceiverConfig } from '@app/config';
import { logFormatHere, loggerParams, requestLine } from '@app/observability/logger';
import { DynamicModule, Module } from '@nestjs/common';
import { LoggerModule } from 'nestjs-pino';
import { DeliveryStoreService } from './delivery-store.service';
import { ReceiverController } from './receiver.controller';
import { RECEIVER_CONFIG } from './receiver.constants';

/**
 * The local webhook receiver: one controller over an in-memory store. No database, no
 * Redis, no admin token: it imports nothing but the logger.
 */
@Module({})
export class ReceiverModule {
  static forRoot(config: ReceiverConfig): DynamicModule {
    const format = logFormatHere(config.logFormat, config.env);
    const params = loggerParams(config.logLevel, format, {
      // The page reloads itself every 5 s: log deliveries and changes, not reads.
      autoLogging: { ignore: (req) => req.method === 'GET' },
      // A 5xx here is what the sender asked for (/status/503), not a failure of
      // ours: log it as a plain request, without pino-http's made-up error and
      // stack. Nest logs a real exception itself.
      customLogLevel: () => 'info',
      customErrorMessage: (req, res) =>
        format === 'pretty' ? requestLine(req, res) : 'request completed',
      customErrorObject: (_req, _res, _err, { err: _synthetic, ...line }) => line,
    });
    return {
      module: ReceiverModule,
      imports: [LoggerModule.forRoot(params)],
      controllers: [ReceiverController],
      providers: [{ provide: RECEIVER_CONFIG, useValue: config }, DeliveryStoreService],
    };
  }
}
