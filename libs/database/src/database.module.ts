import { AppConfig } from '@app/config';
import { DynamicModule, Module } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { TypeOrmModule } from '@nestjs/typeorm';
import { buildDataSourceOptions } from './data-source';

/**
 * The TypeORM connection for a process. Feature libs register their entities with
 * `TypeOrmModule.forFeature`, picked up here by `autoLoadEntities`, so this lib never
 * imports a feature lib.
 */
@Module({})
export class DatabaseModule {
  /**
   * `role` picks the statement timeout: the api's statements are reads a client asked for
   * and waits on (API_STATEMENT_TIMEOUT_MS), the worker's are the pipeline's own.
   */
  static forRoot(applicationName: string, role: 'api' | 'worker' = 'worker'): DynamicModule {
    return {
      module: DatabaseModule,
      imports: [
        TypeOrmModule.forRootAsync({
          inject: [ConfigService],
          useFactory: (config: ConfigService<AppConfig, true>) => {
            const database = config.get('database', { infer: true });
            const statementTimeoutMs =
              role === 'api' ? database.apiStatementTimeoutMs : database.statementTimeoutMs;
            return {
              ...buildDataSourceOptions({ ...database, statementTimeoutMs }, applicationName),
              autoLoadEntities: true,
              retryAttempts: 3,
              retryDelay: 1000,
            };
          },
        }),
      ],
    };
  }
}
