import { loadConfigOrExit, readEnv } from '@app/config';
import { buildDataSourceOptions, runMigrations } from '@app/database';
import { parseKeyRing } from '@app/webhooks/secret-box';
import { resealWebhookSecrets, WebhookSecretCodec } from '@app/webhooks/webhook-secrets';
import { DataSource } from 'typeorm';

/** `npm run migration:run` / `docker run <image> migrate`: apply pending migrations and exit. */
async function main(): Promise<void> {
  const config = loadConfigOrExit('migrate', { requireAdminToken: false });
  const started = Date.now();
  const result = await runMigrations(config.database);
  const db = new URL(config.database.url);
  const where = `${db.hostname}:${db.port || 5432}${db.pathname}`;
  if (result.createdDatabase) process.stdout.write(`migrate: created database ${where}\n`);
  process.stdout.write(
    result.applied.length === 0
      ? `migrate: ${where} is up to date (${Date.now() - started} ms)\n`
      : `migrate: applied ${result.applied.join(', ')} to ${where} (${Date.now() - started} ms)\n`,
  );
  await resealSecrets(config);
}

/**
 * The data migration of webhook secrets (sealing plain ones, re-sealing after a key
 * rotation), when this process has the keys: WEBHOOK_SECRET_KEYS, or ADMIN_TOKEN for the
 * derived key. Otherwise the worker does it at boot.
 */
async function resealSecrets(config: ReturnType<typeof loadConfigOrExit>): Promise<void> {
  if (!config.webhooks.secretKeys && !readEnv().ADMIN_TOKEN) return;
  const codec = new WebhookSecretCodec(
    parseKeyRing(config.webhooks.secretKeys, config.auth.adminToken),
  );
  const dataSource = new DataSource(buildDataSourceOptions(config.database, 'telemetry-migrate'));
  await dataSource.initialize();
  try {
    const { resealed, unreadable } = await resealWebhookSecrets(dataSource, codec);
    if (resealed > 0)
      process.stdout.write(
        `migrate: sealed ${resealed} webhook secrets with key ${codec.ring.current.id}\n`,
      );
    if (unreadable > 0)
      process.stderr.write(
        `migrate: ${unreadable} webhook secrets are sealed with a key missing from WEBHOOK_SECRET_KEYS\n`,
      );
  } finally {
    await dataSource.destroy();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`migrate: failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
