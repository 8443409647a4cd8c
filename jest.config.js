/**
 * Three tiers, one run. Unit specs sit beside the code; integration and e2e specs under
 * test/ talk to real PostgreSQL and Redis. The global setup creates this run's own
 * database (migrated once) and Redis prefix, and the teardown drops them.
 */
const libs = ['common', 'config', 'database', 'queue', 'redis', 'observability', 'testing', 'tenancy', 'telemetry', 'rules', 'alerts', 'webhooks'];
const moduleNameMapper = Object.fromEntries(
  libs.flatMap((l) => [
    [`^@app/${l}$`, `<rootDir>/libs/${l}/src`],
    [`^@app/${l}/(.*)$`, `<rootDir>/libs/${l}/src/$1`],
  ]),
);
moduleNameMapper['^@api/(.*)$'] = '<rootDir>/apps/api/src/$1';
moduleNameMapper['^@worker/(.*)$'] = '<rootDir>/apps/worker/src/$1';
moduleNameMapper['^@receiver/(.*)$'] = '<rootDir>/apps/receiver/src/$1';
moduleNameMapper['^@scripts/(.*)$'] = '<rootDir>/scripts/$1';
const base = {
  rootDir: __dirname,
  testEnvironment: 'node',
  moduleFileExtensions: ['ts', 'js', 'json'],
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: '<rootDir>/tsconfig.jest.json' }] },
  moduleNameMapper,
};

module.exports = {
  globalSetup: '<rootDir>/test/global-setup.js',
  globalTeardown: '<rootDir>/test/global-teardown.js',
  collectCoverageFrom: ['apps/*/src/**/*.ts', '!apps/console/**', 'libs/*/src/**/*.ts', '!**/*.spec.ts', '!**/index.ts', '!libs/testing/**', '!apps/*/src/main.ts'],
  coverageReporters: ['text-summary', 'lcov'],
  coverageThreshold: { global: { lines: 81 } },
  projects: [
    {
      ...base,
      displayName: 'unit',
      testMatch: ['<rootDir>/{apps,libs}/**/*.spec.ts'],
      testPathIgnorePatterns: ['/node_modules/', '<rootDir>/apps/console/'],
    },
    // The web console's logic and components, in jsdom (apps/console: Preact, no Nest).
    {
      rootDir: __dirname,
      displayName: 'console',
      testEnvironment: 'jsdom',
      // Node's builds of the packages (CommonJS), not the browser ones jsdom would pick.
      testEnvironmentOptions: { customExportConditions: ['node', 'require', 'default'] },
      testMatch: ['<rootDir>/apps/console/src/**/*.spec.{ts,tsx}'],
      moduleFileExtensions: ['tsx', 'ts', 'js', 'json'],
      // One compiler setting for the project: a second ts-jest entry would share the first's
      // compiler. Its decorator settings are for the global setup, which Jest compiles with
      // the transform of the first project it runs.
      transform: { '^.+\\.tsx?$': ['ts-jest', { tsconfig: '<rootDir>/apps/console/tsconfig.jest.json' }] },
      moduleNameMapper: { '\\.css$': '<rootDir>/apps/console/test/style-stub.ts' },
    },
    // The console in a real browser (Chromium driven by playwright-core) against the real
    // api, worker, PostgreSQL and Redis, with an accessibility check of each page.
    {
      ...base,
      displayName: 'browser',
      testMatch: ['<rootDir>/test/browser/**/*.browser-spec.ts'],
      slowTestThreshold: 60,
    },
    {
      ...base,
      displayName: 'integration',
      testMatch: ['<rootDir>/test/integration/**/*.int-spec.ts'],
      slowTestThreshold: 30,
    },
    { ...base, displayName: 'e2e', testMatch: ['<rootDir>/test/e2e/**/*.e2e-spec.ts'], slowTestThreshold: 30 },
    // OpenAPI-driven fuzzing (test:fuzz): FUZZ_CASES requests, FUZZ_SEED to replay.
    { ...base, displayName: 'fuzz', testMatch: ['<rootDir>/test/fuzz/**/*.fuzz-spec.ts'], slowTestThreshold: 300 },
  ],
};
