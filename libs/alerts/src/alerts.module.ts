import { Module } from '@nestjs/common';
import { TenancyModule } from '@app/tenancy';
import { TypeOrmModule } from '@nestjs/typeorm';
import { AlertEventsRepository } from './alert-events.repository';
import { AlertsRepository } from './alerts.repository';
import { AlertsService } from './alerts.service';
import { DeviceAlertLock } from './device-alert-lock';
import { AlertEntity } from './entities/alert.entity';

@Module({
  imports: [TypeOrmModule.forFeature([AlertEntity]), TenancyModule],
  providers: [AlertsRepository, AlertEventsRepository, AlertsService, DeviceAlertLock],
  exports: [AlertsRepository, AlertEventsRepository, AlertsService, DeviceAlertLock],
})
export class AlertsModule {}
