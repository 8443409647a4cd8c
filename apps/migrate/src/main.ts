import { loadConfigOrExit } from '@app/config';
import { runMigrations } from '@app/database';

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
}

main().catch((err: unknown) => {
  process.stderr.write(`migrate: failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
