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
  collectCoverageFrom: ['apps/*/src/**/*.ts', 'libs/*/src/**/*.ts', '!**/*.spec.ts', '!**/index.ts', '!libs/testing/**', '!apps/*/src/main.ts'],
  coverageReporters: ['text-summary', 'lcov'],
  coverageThreshold: { global: { lines: 81 } },
  projects: [
    { ...base, displayName: 'unit', testMatch: ['<rootDir>/{apps,libs}/**/*.spec.ts'] },
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
