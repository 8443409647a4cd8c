#!/usr/bin/env node
/**
 * The rules of the code's shape that ESLint can't see, checked in `npm run lint`:
 *
 * 1. SQL lives in repositories: `.query(` appears only in `*.repository.ts` files, in
 *    libs/database (migrations, locks, quotas: the SQL infrastructure repositories are
 *    built from) and in tests.
 * 2. Every table has one owning lib: SQL in a lib names only its own tables, and a lib
 *    uses only its own TypeORM entities for queries. Another lib's data is reached through
 *    that lib's repository, an import a reader can see. Infrastructure libs name no
 *    feature table at all (nor one interpolated into their SQL).
 * 3. Libs depend downward only: their imports of each other form no cycle.
 * 4. Every Redis key has a hash-tag decision: a `key('<namespace>', …)` call names a
 *    namespace declared in libs/redis/src/key-space.ts (the Redis Cluster suite checks
 *    every key actually written against the declared patterns).
 *
 * Exits 1 listing each violation as file:line.
 */
const { readdirSync, readFileSync, statSync } = require('node:fs');
const { join, relative } = require('node:path');

const ROOT = join(__dirname, '..');

/** Table → owning lib. A new table must be added here (the check fails until it is). */
const OWNERS = {
  orgs: 'tenancy',
  projects: 'tenancy',
  api_keys: 'tenancy',
  devices: 'tenancy',
  telemetry: 'telemetry',
  telemetry_rejections: 'telemetry',
  rules: 'rules',
  rule_devices: 'rules',
  rule_device_state: 'rules',
  alerts: 'alerts',
  alert_events: 'alerts',
  silences: 'alerts',
  webhooks: 'webhooks',
  webhook_deliveries: 'webhooks',
  webhook_attempts: 'webhooks',
};
const FEATURE_LIBS = new Set(Object.values(OWNERS));

function files(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (name === 'node_modules' || name === 'dist') return [];
    return statSync(path).isDirectory() ? files(path) : path.endsWith('.ts') ? [path] : [];
  });
}

const isTest = (path) => /\.(spec|int-spec|e2e-spec)\.ts$/.test(path);
const libOf = (path) => /^libs\/([^/]+)\//.exec(path)?.[1];

const violations = [];
const report = (path, text, index, message) => {
  const line = text.slice(0, index).split('\n').length;
  violations.push(`${path}:${line}: ${message}`);
};

// Entities: class name → owning lib (where it is declared).
const entityOwner = {};
const sources = ['apps', 'libs'].flatMap((d) => files(join(ROOT, d)));
for (const abs of sources) {
  const path = relative(ROOT, abs);
  const text = readFileSync(abs, 'utf8');
  for (const m of text.matchAll(/@Entity\([^)]*\)\s*export class (\w+)/g)) entityOwner[m[1]] = libOf(path);
}

for (const abs of sources) {
  const path = relative(ROOT, abs);
  if (isTest(path)) continue;
  const text = readFileSync(abs, 'utf8');
  const lib = libOf(path);

  if (!path.endsWith('.repository.ts') && lib !== 'database' && lib !== 'testing') {
    for (const m of text.matchAll(/\.query\(/g))
      report(path, text, m.index, 'SQL outside a repository (move it to the owning lib\'s *.repository.ts)');
  }

  // Infrastructure libs (libs/database's locks and quotas, queue, redis, …) name no feature
  // table, not even through an interpolated name: the owning lib passes in what it counts.
  if (lib && !FEATURE_LIBS.has(lib) && lib !== 'testing' && !path.includes('/migrations/')) {
    for (const m of text.matchAll(/\b(?:FROM|JOIN|INTO|UPDATE|USING|TABLE)\s+(\$\{|[a-z_]+\b)/g)) {
      if (m[1] === '${' || OWNERS[m[1]])
        report(path, text, m.index, `infrastructure lib names a feature table (${m[1] === '${' ? 'interpolated' : m[1]}); let the owning lib's repository do it`);
    }
  }

  if (!FEATURE_LIBS.has(lib) && !path.startsWith('apps/')) continue;
  // Table names after SQL keywords (uppercase, as our SQL is written).
  for (const m of text.matchAll(/\b(?:FROM|JOIN|INTO|UPDATE|USING|TABLE)\s+([a-z_]+)\b/g)) {
    const owner = OWNERS[m[1]];
    if (owner && owner !== lib)
      report(path, text, m.index, `uses table ${m[1]}, owned by libs/${owner}`);
  }
  for (const m of text.matchAll(/\b(?:getRepository|InjectRepository|forFeature)\(\[?\s*(\w+Entity)/g)) {
    const owner = entityOwner[m[1]];
    if (owner && owner !== lib)
      report(path, text, m.index, `queries ${m[1]}, an entity of libs/${owner}`);
  }
}

// Libs depend downward only: the graph of `@app/<lib>` imports between libs has no cycle.
const deps = {};
for (const abs of sources) {
  const path = relative(ROOT, abs);
  const lib = libOf(path);
  if (!lib || isTest(path)) continue;
  const text = readFileSync(abs, 'utf8');
  for (const m of text.matchAll(/from '@app\/([a-z]+)'/g))
    if (m[1] !== lib) (deps[lib] ??= new Map()).set(m[1], path);
}
const cycle = (start, at = start, seen = [start]) => {
  for (const next of deps[at]?.keys() ?? []) {
    if (next === start) return [...seen, next];
    if (!seen.includes(next)) {
      const found = cycle(start, next, [...seen, next]);
      if (found) return found;
    }
  }
  return null;
};
for (const lib of Object.keys(deps)) {
  const found = cycle(lib);
  if (found) {
    violations.push(`libs form a cycle: ${found.join(' → ')} (e.g. ${deps[lib].get(found[1])})`);
    break;
  }
}

// Every table a migration creates has an owner.
for (const abs of files(join(ROOT, 'libs/database/src/migrations'))) {
  const text = readFileSync(abs, 'utf8');
  for (const m of text.matchAll(/CREATE TABLE (?:IF NOT EXISTS )?([a-z_]+)/g))
    if (!OWNERS[m[1]]) report(relative(ROOT, abs), text, m.index, `table ${m[1]} has no owning lib in scripts/check-architecture.js`);
}

// Every Redis key namespace used is declared, with its slot decision.
const keySpace = readFileSync(join(ROOT, 'libs/redis/src/key-space.ts'), 'utf8');
const declared = new Set(
  [...keySpace.matchAll(/single: '<prefix>:([a-z-]+):/g)].map((m) => m[1]),
);
for (const abs of sources) {
  const path = relative(ROOT, abs);
  if (isTest(path)) continue;
  const text = readFileSync(abs, 'utf8');
  for (const m of text.matchAll(/\b(?:redis|redisService)\.key\(\s*'([^']*)'/g))
    if (!declared.has(m[1]))
      report(path, text, m.index, `Redis key namespace '${m[1]}' is not declared (with its hash tag) in libs/redis/src/key-space.ts`);
}

if (violations.length > 0) {
  console.error(`architecture check failed:\n${violations.map((v) => `  ${v}`).join('\n')}`);
  process.exit(1);
}
console.log('architecture check: ok');
