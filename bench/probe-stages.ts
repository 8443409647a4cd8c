import { loadConfig } from '@app/config';
import { queuePrefix, QUEUES } from '@app/queue';
import { parseRedisUrl } from '@app/redis';
import Redis from 'ioredis';
import { Client } from 'pg';
import { DATABASE_URL, percentile } from './common';

/** One stage of a probe's way from the api to the webhook's attempt, in ms per probe. */
export interface Stage {
  name: string;
  ms: number[];
}

const STAGES = [
  'accepted → queued', // the api: body stored, backlog counted, job added
  'queued → started', // waiting for a worker slot
  'started → transaction', // the body read, the early-batch check, a pooled connection
  'transaction → job done', // store, evaluate, fan out, commit, enqueue the delivery
  'job done → attempt', // the delivery job's hop, its reads and its claim
  'attempt', // the POST to the receiver
] as const;

/**
 * Where the time of a project's probes went, stage by stage, from what the stack keeps:
 * each ingest job's timestamps in Redis (BullMQ keeps the last 1,000 completed, so on a
 * loaded stack only the last few hundred probes are still there), and in PostgreSQL the
 * alert each probe opened (`created_at` is its transaction's start) with its delivery's
 * first attempt. Probes are matched to alerts by time: one device's batches are stored one
 * at a time, 100 ms apart. Empty on a Redis Cluster (the jobs are read with one client).
 */
export async function probeStages(projectId: string, since: number): Promise<Stage[]> {
  const { redis } = loadConfig();
  if (parseRedisUrl(redis.url).cluster) return [];
  const prefix = `${queuePrefix(redis, QUEUES.TELEMETRY_INGEST)}:${QUEUES.TELEMETRY_INGEST}`;
  const client = new Redis(redis.url, { lazyConnect: true });
  const db = new Client({ connectionString: DATABASE_URL });
  try {
    await client.connect();
    await db.connect();
    const ids = await client.zrangebyscore(`${prefix}:completed`, since, '+inf');
    const pipeline = client.pipeline();
    for (const id of ids)
      pipeline.hmget(`${prefix}:${id}`, 'data', 'timestamp', 'processedOn', 'finishedOn');
    const jobs = ((await pipeline.exec()) ?? [])
      .map(([, fields]) => fields as Array<string | null>)
      .filter(
        (f) => f[0] !== null && (JSON.parse(f[0]) as { projectId: string }).projectId === projectId,
      )
      .map(([data, added, started, finished]) => ({
        accepted: (JSON.parse(data!) as { acceptedAt: number }).acceptedAt,
        added: Number(added),
        started: Number(started),
        finished: Number(finished),
      }));
    const { rows } = await db.query<{ tx: string; attempt: string; duration: number }>(
      `SELECT extract(epoch FROM a.created_at) * 1000 AS tx,
              extract(epoch FROM t.started_at) * 1000 AS attempt, t.duration_ms AS duration
         FROM alerts a
         JOIN alert_events e ON e.alert_id = a.id AND e.type = 'alert.created'
         JOIN webhook_deliveries d ON d.event_id = e.id
         JOIN webhook_attempts t ON t.delivery_id = d.id AND t.attempt = 1
        WHERE a.project_id = $1 AND a.created_at >= to_timestamp($2 / 1000.0)`,
      [projectId, since],
    );
    const alerts = rows.map((r) => ({
      tx: Number(r.tx),
      attempt: Number(r.attempt),
      post: r.duration,
    }));
    const stages = STAGES.map((name) => ({ name, ms: [] as number[] }));
    for (const job of jobs) {
      const alert = alerts.find((a) => a.tx >= job.started - 2 && a.tx <= job.finished + 2);
      if (!alert) continue;
      [
        job.added - job.accepted,
        job.started - job.added,
        alert.tx - job.started,
        job.finished - alert.tx,
        alert.attempt - job.finished,
        alert.post,
      ].forEach((ms, i) => stages[i].ms.push(ms));
    }
    for (const s of stages) s.ms.sort((a, b) => a - b);
    return stages;
  } finally {
    client.disconnect();
    await db.end();
  }
}

/** The stages as lines of `p50 / p90 / p99` ms. */
export function formatStages(stages: Stage[]): string[] {
  if (stages.length === 0 || stages[0].ms.length === 0) return ['(no probes left to break down)'];
  const width = Math.max(...stages.map((s) => s.name.length));
  return stages.map(
    (s) =>
      `${s.name.padEnd(width)}  ${[50, 90, 99].map((p) => Math.round(percentile(s.ms, p))).join(' / ')}`,
  );
}
