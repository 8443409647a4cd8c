// Exits 0 when PostgreSQL (DATABASE_URL's server) and Redis (REDIS_URL) both answer,
// 1 otherwise, printing which one is missing. Used by scripts/services.sh.
const { Client } = require('pg');
const Redis = require('ioredis');

const dbUrl = new URL(process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/telemetry');
dbUrl.pathname = '/postgres'; // the database itself may not exist yet: migrations create it
const redisUrl = process.env.REDIS_URL || 'redis://127.0.0.1:6379';
// A cluster's seed nodes are Redis servers: the first one answering PING will do.
const firstNode = (url) =>
  url.replace(/^(rediss?)\+cluster:\/\/([^@/]*@)?([^,/]+)[^/]*/, (_, scheme, auth = '', host) => `${scheme}://${auth}${host}`);

async function pg() {
  const c = new Client({ connectionString: dbUrl.toString(), connectionTimeoutMillis: 2000 });
  try {
    await c.connect();
    await c.query('SELECT 1');
    return true;
  } catch (err) {
    console.error(`postgres: not reachable at ${dbUrl.host} (${err.message})`);
    return false;
  } finally {
    await c.end().catch(() => {});
  }
}

async function redis() {
  const r = new Redis(firstNode(redisUrl), { lazyConnect: true, maxRetriesPerRequest: 0, connectTimeout: 2000, retryStrategy: () => null });
  r.on('error', () => {});
  try {
    await r.connect();
    await r.ping();
    return true;
  } catch (err) {
    console.error(`redis: not reachable at ${redisUrl} (${err.message})`);
    return false;
  } finally {
    r.disconnect();
  }
}

Promise.all([pg(), redis()]).then(([a, b]) => process.exit(a && b ? 0 : 1));
