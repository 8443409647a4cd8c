import { DynamicModule, Module } from '@nestjs/common';
import { ConfigModule } from '@nestjs/config';
import { AppConfig } from './config';
import { WorkerRoles } from './worker-roles.service';

/**
 * Makes the already-validated {@link AppConfig} available as a global `ConfigService`.
 * Validation happens before Nest starts (`loadConfig()` in each `main.ts`), so a bad
 * environment stops the process with one message instead of a stack trace.
 */
@Module({})
export class AppConfigModule {
  static forRoot(config: AppConfig): DynamicModule {
    return {
      module: AppConfigModule,
      global: true,
      imports: [
        ConfigModule.forRoot({
          isGlobal: true,
          ignoreEnvFile: true,
          load: [() => ({ ...config })],
        }),
      ],
      providers: [WorkerRoles],
      exports: [ConfigModule, WorkerRoles],
    };
  }
}
