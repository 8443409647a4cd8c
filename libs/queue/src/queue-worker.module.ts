import { Global, Module } from '@nestjs/common';
import { OutageService } from './outage.service';

/** What every processor of a worker process shares (imported once, by the worker app). */
@Global()
@Module({ providers: [OutageService], exports: [OutageService] })
export class QueueWorkerModule {}
