import { Module } from '@nestjs/common';
import { TenancyModule } from '@app/tenancy';
import { TypeOrmModule } from '@nestjs/typeorm';
import { AlertEventsRepository } from './alert-events.repository';
import { AlertsRepository } from './alerts.repository';
import { AlertsService } from './alerts.service';
import { DeviceAlertLock } from './device-alert-lock';
import { AlertEntity } from './entities/alert.entity';
import { SilenceEntity } from './entities/silence.entity';
import { SilencesRepository } from './silences.repository';
import { SilencesService } from './silences.service';

/** Everything this module provides, it gives the modules importing it. */
const SHARED = [
  AlertsRepository,
  AlertEventsRepository,
  AlertsService,
  DeviceAlertLock,
  SilencesRepository,
  SilencesService,
];

@Module({
  imports: [TypeOrmModule.forFeature([AlertEntity, SilenceEntity]), TenancyModule],
  providers: SHARED,
  exports: SHARED,
})
export class AlertsModule {}
