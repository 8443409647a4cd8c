import { readEnv, tuneHeap } from '@app/config';
import { cpus, totalmem } from 'node:os';

export const env = readEnv();
export const API = env.API_URL ?? `http://127.0.0.1:${env.PORT ?? 8000}`;
export const DATABASE_URL = env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/telemetry';

/**
 * Readies a client that times requests and webhooks: its own full collections, paced by
 * the bodies it sends as the api's are, must not stall its clock ({@link tuneHeap}).
 */
export function timingClient(): void {
  tuneHeap();
}

export function machine(): string {
  const c = cpus();
  return `${c.length} × ${c[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, node ${process.version}`;
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

export async function adminPost<T>(path: string, body: unknown): Promise<T> {
  const res = await fetch(`${API}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${env.ADMIN_TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`POST ${path}: ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

/** A fresh org, project and all-scopes key for one benchmark run. */
export async function newTenant(label: string): Promise<{ projectId: string; key: string }> {
  const name = `${label}-${Date.now().toString(36)}`;
  const org = await adminPost<{ id: string }>('/orgs', { name });
  const project = await adminPost<{ id: string }>(`/orgs/${org.id}/projects`, { name });
  const key = await adminPost<{ key: string }>(`/projects/${project.id}/api-keys`, {
    name: 'bench',
  });
  return { projectId: project.id, key: key.key };
}

export const int = (name: string, fallback: number): number => {
  const v = env[name];
  return v === undefined ? fallback : Number(v);
};

/** mulberry32: a small seeded PRNG, so a run (its data, its fault schedule) can be replayed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
