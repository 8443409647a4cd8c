/**
 * `npm run k8s:validate`: renders every overlay of deploy/kubernetes with `kubectl
 * kustomize` (offline) and checks what it renders:
 *
 * 1. each object against its schema: Kubernetes (`kubernetes-models`), KEDA
 *    (`@kubernetes-models/keda`) and the Prometheus operator
 *    (`@kubernetes-models/prometheus-operator`); an unknown kind is a problem;
 * 2. this project's invariants: every setting of the app's environment is set by the
 *    ConfigMap or the Secret and passes the app's own validation (the same `validateEnv`
 *    the processes run at boot); container ports match PORT / WORKER_PORT; probes point at
 *    the real health routes; the grace period is above the drain; each worker role has one
 *    Deployment whose ScaledObject (or HPA) watches that role's queue; the security
 *    context of every app container; requests and memory limits.
 *
 * Prints `kubernetes: ok (...)` and exits 0, or lists every problem and exits 1.
 */
import {
  ConfigValidationError,
  EnvironmentVariables,
  validateEnv,
  WORKER_ROLES,
} from '@app/config';
import { QUEUE_OF_ROLE } from '@app/queue';
import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { parseAllDocuments } from 'yaml';

// Rendered YAML documents: shapes are checked by the schemas, not by TypeScript.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = Record<string, any>;

const ROOT = join(__dirname, '..');
export const OVERLAYS = join(ROOT, 'deploy/kubernetes/overlays');

/** Keys the Secret must hold (production creates it by hand: docs/operations.md). */
const SECRET_KEYS = ['ADMIN_TOKEN', 'DATABASE_URL', 'REDIS_URL', 'WEBHOOK_SECRET_KEYS'];
/** Stand-ins for a Secret that is not rendered, shaped as the app requires. */
const SECRET_STAND_INS: Record<string, string> = {
  ADMIN_TOKEN: 'x'.repeat(32),
  DATABASE_URL: 'postgres://app@db:5432/telemetry',
  REDIS_URL: 'redis://redis:6379',
  WEBHOOK_SECRET_KEYS: '',
};
const HEALTH_ROUTES = new Set(['/health/live', '/health/ready']);

/* eslint-disable @typescript-eslint/no-require-imports */
const MODEL_PACKAGES: Array<[RegExp, (group: string, version: string) => string]> = [
  [/^keda\.sh$/, (g, v) => `@kubernetes-models/keda/${g}/${v}`],
  [/^monitoring\.coreos\.com$/, (g, v) => `@kubernetes-models/prometheus-operator/${g}/${v}`],
  [/^$/, (_g, v) => `kubernetes-models/${v}`],
  [/.*/, (g, v) => `kubernetes-models/${g}/${v}`],
];

export function validateSchema(doc: Json): string[] {
  const [group, version] = doc.apiVersion?.includes('/')
    ? doc.apiVersion.split('/')
    : ['', doc.apiVersion];
  const module = MODEL_PACKAGES.find(([re]) => re.test(group))![1](group, version);
  let models: Json;
  try {
    models = require(module);
  } catch {
    return [`${doc.kind}: no schema for apiVersion ${doc.apiVersion}`];
  }
  const Model = models[doc.kind];
  if (!Model) return [`${doc.kind}: not a kind of ${doc.apiVersion}`];
  try {
    new Model(doc).validate();
    return [];
  } catch (err) {
    return [`schema: ${(err as Error).message.split('\n').slice(0, 6).join(' ')}`];
  }
}
/* eslint-enable @typescript-eslint/no-require-imports */

export function render(overlay: string): Json[] {
  const yaml = execFileSync('kubectl', ['kustomize', overlay], { encoding: 'utf8' });
  return parseAllDocuments(yaml).map((d) => d.toJSON() as Json);
}

const named = (docs: Json[], kind: string) => docs.filter((d) => d.kind === kind);
const nameOf = (d: Json) => `${d.kind}/${d.metadata?.name}`;

/** Deployments and Jobs that run the app image, with their container. */
function appWorkloads(docs: Json[]): Array<{ doc: Json; container: Json; role: string }> {
  return docs
    .filter((d) => d.kind === 'Deployment' || d.kind === 'Job')
    .flatMap((doc) =>
      (doc.spec.template.spec.containers as Json[])
        .filter((c) => ['api', 'worker', 'migrate'].includes(c.args?.[0]))
        .map((container) => ({ doc, container, role: container.args[0] as string })),
    );
}

export function checkInvariants(docs: Json[]): string[] {
  const problems: string[] = [];
  const configMaps = named(docs, 'ConfigMap');
  const secrets = named(docs, 'Secret');
  const settings = [...new Set([...Object.keys(new EnvironmentVariables()), ...SECRET_KEYS])];

  const workloads = appWorkloads(docs);
  if (!workloads.some((w) => w.role === 'api')) problems.push('no api Deployment');
  if (!workloads.some((w) => w.role === 'migrate')) problems.push('no migrate Job');

  for (const { doc, container, role } of workloads) {
    const where = `${nameOf(doc)}`;
    const env: Record<string, string> = {};
    for (const from of container.envFrom ?? []) {
      if (from.configMapRef) {
        const cm = configMaps.find((c) => c.metadata.name === from.configMapRef.name);
        if (!cm) problems.push(`${where}: ConfigMap ${from.configMapRef.name} is not rendered`);
        else Object.assign(env, cm.data);
      }
      if (from.secretRef) {
        const secret = secrets.find((s) => s.metadata.name === from.secretRef.name);
        if (secret) {
          for (const [k, v] of Object.entries<string>(secret.data ?? {}))
            env[k] = Buffer.from(v, 'base64').toString('utf8');
          for (const k of SECRET_KEYS)
            if (!(k in env)) problems.push(`${where}: the Secret has no ${k}`);
        } else if (from.secretRef.name === 'telemetry-secrets') {
          Object.assign(env, SECRET_STAND_INS); // created by hand in production
        } else problems.push(`${where}: Secret ${from.secretRef.name} is unknown`);
      }
    }
    for (const e of container.env ?? []) if (typeof e.value === 'string') env[e.name] = e.value;
    for (const key of settings)
      if (!(key in env)) problems.push(`${where}: ${key} is set by neither ConfigMap nor Secret`);
    try {
      validateEnv(env);
    } catch (err) {
      if (!(err instanceof ConfigValidationError)) throw err;
      for (const p of err.problems) problems.push(`${where}: ${p}`);
    }

    const spec = doc.spec.template.spec;
    const ports = new Map<string, number>(
      (container.ports ?? []).map((p: Json) => [p.name, p.containerPort]),
    );
    const wantPort = role === 'api' ? env.PORT : role === 'worker' ? env.WORKER_PORT : undefined;
    if (wantPort !== undefined && ![...ports.values()].includes(Number(wantPort)))
      problems.push(
        `${where}: no container port ${wantPort} (${role === 'api' ? 'PORT' : 'WORKER_PORT'})`,
      );
    if (role !== 'migrate') {
      for (const probe of ['readinessProbe', 'livenessProbe']) {
        const http = container[probe]?.httpGet;
        if (!http) {
          problems.push(`${where}: no ${probe}`);
          continue;
        }
        if (!HEALTH_ROUTES.has(http.path))
          problems.push(`${where}: ${probe} path ${http.path} is not a health route`);
        const port = typeof http.port === 'string' ? ports.get(http.port) : http.port;
        if (port !== Number(wantPort))
          problems.push(`${where}: ${probe} port ${http.port} is not ${wantPort}`);
      }
      const preStop = Number(container.lifecycle?.preStop?.exec?.command?.[1] ?? 0);
      const grace = spec.terminationGracePeriodSeconds ?? 30;
      const drain = Number(env.SHUTDOWN_GRACE_MS) / 1000 + preStop;
      if (grace <= drain)
        problems.push(
          `${where}: terminationGracePeriodSeconds ${grace} is not above the drain (${drain} s)`,
        );
    }
    const pod = spec.securityContext ?? {};
    const sc = container.securityContext ?? {};
    if (pod.runAsNonRoot !== true) problems.push(`${where}: pod runAsNonRoot is not true`);
    if (sc.readOnlyRootFilesystem !== true) problems.push(`${where}: root filesystem is writable`);
    if (sc.allowPrivilegeEscalation !== false)
      problems.push(`${where}: privilege escalation allowed`);
    if (!(sc.capabilities?.drop ?? []).includes('ALL'))
      problems.push(`${where}: capabilities not dropped`);
    if (!/:[^/:]+$/.test(container.image ?? ''))
      problems.push(`${where}: image ${container.image} has no tag (an overlay's images: sets it)`);
    const res = container.resources ?? {};
    if (!res.requests?.cpu || !res.requests?.memory)
      problems.push(`${where}: no cpu and memory requests`);
    if (!res.limits?.memory) problems.push(`${where}: no memory limit`);
  }

  // Worker roles: one Deployment each, scaled on its own queue.
  const workers = workloads.filter((w) => w.role === 'worker');
  const scaledObjects = named(docs, 'ScaledObject');
  const hpas = named(docs, 'HorizontalPodAutoscaler');
  for (const role of WORKER_ROLES) {
    const mine = workers.filter(
      (w) => w.container.env?.find((e: Json) => e.name === 'WORKER_QUEUES')?.value === role,
    );
    if (mine.length !== 1) {
      problems.push(`worker role ${role}: ${mine.length} Deployments (want 1)`);
      continue;
    }
    const name = mine[0].doc.metadata.name;
    const so = scaledObjects.find((s) => s.spec.scaleTargetRef.name === name);
    const hpa = hpas.find((h) => h.spec.scaleTargetRef.name === name);
    if (!so && !hpa) problems.push(`${name}: neither a ScaledObject nor an HPA scales it`);
    if (so) {
      const cm = configMaps[0]?.data ?? {};
      const want = `${cm.REDIS_PREFIX}:bull:${QUEUE_OF_ROLE[role]}:wait`;
      const lists = (so.spec.triggers as Json[]).map((t) => t.metadata?.listName);
      if (!lists.includes(want))
        problems.push(`${nameOf(so)}: watches ${lists.join(', ')}, not ${want}`);
      if (so.spec.minReplicaCount < 1)
        problems.push(`${nameOf(so)}: scales to zero (a role's periodic duties stop)`);
    }
  }
  for (const w of workers) {
    const roles = w.container.env?.find((e: Json) => e.name === 'WORKER_QUEUES')?.value;
    if (!roles) problems.push(`${nameOf(w.doc)}: WORKER_QUEUES is not set (every role)`);
  }
  return problems;
}

function main(): number {
  const overlays = readdirSync(OVERLAYS).map((o) => join(OVERLAYS, o));
  const problems: string[] = [];
  let objects = 0;
  for (const overlay of overlays) {
    const label = relative(ROOT, overlay);
    let docs: Json[];
    try {
      docs = render(overlay);
    } catch (err) {
      problems.push(`${label}: kubectl kustomize failed: ${(err as Error).message}`);
      continue;
    }
    objects += docs.length;
    for (const doc of docs)
      for (const p of validateSchema(doc)) problems.push(`${label}: ${nameOf(doc)}: ${p}`);
    for (const p of checkInvariants(docs)) problems.push(`${label}: ${p}`);
  }
  if (problems.length > 0) {
    process.stderr.write(
      `kubernetes: ${problems.length} problem(s)\n${problems.map((p) => `  ${p}\n`).join('')}`,
    );
    return 1;
  }
  process.stdout.write(`kubernetes: ok (${overlays.length} overlays, ${objects} objects)\n`);
  return 0;
}

if (require.main === module) process.exit(main());
