import { AppConfig, EnvSource, loadConfig } from '@app/config';
import { DynamicModule, INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { NestExpressApplication } from '@nestjs/platform-express';
import { testConfigOverrides } from './test-env';

export interface TestApp {
  app: NestExpressApplication;
  config: AppConfig;
  close(): Promise<void>;
}

/**
 * Boots the real api module with the real `configureApp()` against this run's database
 * and Redis namespace. Modules come in as arguments so this lib never imports an app.
 */
export async function bootTestApi(
  moduleFor: (config: AppConfig) => DynamicModule,
  configure: (app: NestExpressApplication) => void,
  overrides: EnvSource = {},
): Promise<TestApp> {
  const config = loadConfig(testConfigOverrides(overrides));
  const app = await NestFactory.create<NestExpressApplication>(moduleFor(config), {
    bodyParser: false,
    logger: false,
  });
  configure(app);
  await app.init();
  return { app, config, close: () => app.close() };
}

export interface TestWorker {
  app: INestApplicationContext;
  config: AppConfig;
  close(): Promise<void>;
}

/**
 * Boots a worker-style application context (no HTTP adapter) against this run's database
 * and Redis namespace: every processor of the module it is given runs in this process.
 */
export async function bootTestWorker(
  moduleFor: (config: AppConfig) => DynamicModule,
  overrides: EnvSource = {},
): Promise<TestWorker> {
  const config = loadConfig(testConfigOverrides(overrides));
  const app = await NestFactory.createApplicationContext(moduleFor(config), {
    logger: false,
    abortOnError: false,
  });
  await app.init();
  return { app, config, close: () => app.close() };
}
