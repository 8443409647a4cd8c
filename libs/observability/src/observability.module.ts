import { Global, Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { ReadinessService } from './health.service';
import { MetricsService } from './metrics.service';

@Global()
@Module({
  imports: [TerminusModule.forRoot({ logger: false })],
  providers: [MetricsService, ReadinessService],
  exports: [MetricsService, ReadinessService, TerminusModule],
})
export class ObservabilityModule {}
