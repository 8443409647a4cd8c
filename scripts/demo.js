// `npm run demo`: a running stack, end to end, in about a minute. On the api at
// API_URL (default http://127.0.0.1:$PORT) it makes, or finds from an earlier run, an org
// and a project named "demo", a new API key, three tagged devices, two rules and a webhook
// to the local receiver (its secret handed to the receiver, so deliveries show as
// verified), then streams simulated readings that open alerts, deliver them and resolve
// them, printing each step, and ends with the curl lines to look at what it made.
//
// Settings (environment or .env): ADMIN_TOKEN, API_URL or PORT, RECEIVER_URL (default
// http://127.0.0.1:$RECEIVER_PORT; the worker posts to RECEIVER_URL/demo, so it must be
// the receiver's address as the worker sees it), DEMO_PROJECT (org and project name,
// "demo"), DEMO_DURATION_SECONDS (how long readings stream, 60), DEMO_SETTLE_SECONDS (how
// long to wait afterwards for the last alerts to resolve and deliver, 30),
// DEMO_PUBLIC_API_URL and DEMO_PUBLIC_RECEIVER_URL (the addresses printed for you, when
// they differ from where the demo reaches them, as under docker compose).
//
// Exits 0 once at least one alert opened and was delivered, 1 otherwise (with the reason).
'use strict';
const {
  Api,
  ApiError,
  UserError,
  apiUrl,
  createOr409,
  ensureOrgAndProject,
  loadEnv,
  receiverUrl,
  run,
  shellAssign,
} = require('./api-client');

const env = loadEnv();
const API = apiUrl(env);
const RECEIVER = receiverUrl(env);
const PUBLIC_API = (env.DEMO_PUBLIC_API_URL || API).replace(/\/+$/, '');
const PUBLIC_RECEIVER = (env.DEMO_PUBLIC_RECEIVER_URL || RECEIVER).replace(/\/+$/, '');
const WEBHOOK_URL = `${RECEIVER}/demo`;
const NAME = env.DEMO_PROJECT || 'demo';
const DURATION_S = positiveNumber('DEMO_DURATION_SECONDS', 60);
const SETTLE_S = positiveNumber('DEMO_SETTLE_SECONDS', 30);
/** The process start: what "time to first delivery" is measured from. */
const STARTED_AT = Date.now() - process.uptime() * 1000;

const DEVICES = [
  { external_id: 'greenhouse-1', name: 'Greenhouse, north bed', tags: ['greenhouse', 'north'] },
  { external_id: 'greenhouse-2', name: 'Greenhouse, south bed', tags: ['greenhouse', 'south'] },
  { external_id: 'cellar-1', name: 'Seed cellar', tags: ['cellar'] },
];
const RULES = [
  {
    name: 'Greenhouse too hot',
    metric: 'temperature',
    operator: '>',
    threshold: 30,
    window_n: 5,
    required_k: 3,
    cooldown_seconds: 0,
    scope: 'TAG',
    tag: 'greenhouse',
    enabled: true,
  },
  {
    name: 'Air too dry',
    metric: 'humidity',
    operator: '<',
    threshold: 25,
    window_n: 3,
    required_k: 2,
    cooldown_seconds: 0,
    scope: 'ALL',
    enabled: true,
  },
];

function positiveNumber(name, fallback) {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) {
    console.error(
      `error: ${name} must be a positive number of seconds, got ${JSON.stringify(raw)}`,
    );
    process.exit(1);
  }
  return value;
}

const secondsSince = (t) => ((Date.now() - t) / 1000).toFixed(1);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const describeRule = (r) =>
  `${r.metric} ${r.operator} ${r.threshold} in ${r.required_k} of the last ${r.window_n} readings, ` +
  (r.scope === 'TAG' ? `devices tagged ${r.tag}` : 'every device');

// ---------------------------------------------------------------------------------------
// setup: find or create everything, by name

async function setUp(admin) {
  const { org, project, orgExisted, projectExisted } = await ensureOrgAndProject(admin, NAME);
  const key = await admin.post(`/projects/${project.id}/api-keys`, { name: 'npm run demo' });
  const api = admin.withKey(key.key);
  const p = `/projects/${project.id}`;

  const devices = [];
  let devicesCreated = 0;
  for (const want of DEVICES) {
    const found = await findOrCreate(
      () => api.find(`${p}/devices`, (d) => d.external_id === want.external_id),
      () => api.post(`${p}/devices`, want),
    );
    let device = found.item;
    if (found.created) devicesCreated++;
    else if (device.tags.join() !== want.tags.join()) {
      device = await api.patch(`/devices/${device.id}`, { tags: want.tags });
    }
    devices.push(device);
  }

  const rules = [];
  let rulesCreated = 0;
  for (const want of RULES) {
    const found = await findOrCreate(
      // Rule names are unique per project, case-insensitively.
      () => api.find(`${p}/rules`, (r) => r.name.toLowerCase() === want.name.toLowerCase()),
      () => api.post(`${p}/rules`, want),
    );
    let rule = found.item;
    if (found.created) rulesCreated++;
    else if (!sameRule(rule, want)) {
      // Changed by hand since the last run: put it back the way the demo needs it.
      const { name: _name, ...definition } = want;
      rule = await api.patch(`/rules/${rule.id}`, definition);
    }
    rules.push(rule);
  }

  // The webhook's secret is shown only when it is created or rotated: a webhook from an
  // earlier run gets a new one (the old one retired at once) to hand to the receiver.
  let secret;
  let webhookNote;
  const existing = await api.find(`${p}/webhooks`, (w) => w.url === WEBHOOK_URL);
  let webhook = existing;
  if (!webhook) {
    try {
      webhook = await api.post(`${p}/webhooks`, {
        url: WEBHOOK_URL,
        description: 'npm run demo: the local webhook receiver',
      });
    } catch (err) {
      if (err instanceof ApiError && err.status === 422 && /url/i.test(JSON.stringify(err.body))) {
        throw new UserError(
          `the api refused the webhook URL ${WEBHOOK_URL}: ${err.body.message}\n` +
            'For local development set WEBHOOK_ALLOW_PRIVATE_NETWORKS=true in .env and restart ' +
            'the api and worker (the .env that `npm run up` writes has it).',
        );
      }
      throw err;
    }
    secret = webhook.secret;
    webhookNote = 'created';
  } else {
    if (!webhook.enabled) webhook = await api.post(`/webhooks/${webhook.id}/enable`);
    ({ secret } = await api.post(`/webhooks/${webhook.id}/rotate-secret`, {
      previous_secret_ttl_seconds: 0,
    }));
    webhookNote = 'existed; secret rotated';
  }
  await registerSecret(secret);

  return {
    org,
    project,
    key,
    api,
    devices,
    rules,
    webhook,
    notes: {
      org: orgExisted ? 'existed' : 'created',
      project: projectExisted ? 'existed' : 'created',
      devices: `${devicesCreated} created, ${devices.length - devicesCreated} existed`,
      rules: `${rulesCreated} created, ${rules.length - rulesCreated} existed`,
      webhook: webhookNote,
    },
  };
}

async function findOrCreate(find, create) {
  const found = await find();
  if (found) return { item: found, created: false };
  const item = await createOr409(create, find);
  return { item, created: true };
}

function sameRule(rule, want) {
  return Object.entries(want).every(([k, v]) => rule[k] === v);
}

/** Hands the secret to the receiver (its page's form), so it verifies the signatures. */
async function registerSecret(secret) {
  let res;
  try {
    res = await fetch(`${RECEIVER}/_secrets`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ secret }).toString(),
      redirect: 'manual',
      signal: AbortSignal.timeout(5000),
    });
  } catch (err) {
    throw receiverNotAnswering(err);
  }
  if (res.status !== 303 && !res.ok) {
    throw new UserError(
      `the receiver at ${RECEIVER} did not take the webhook's secret (${res.status}); ` +
        'restart it (`npm run up`) if it holds too many',
    );
  }
}

async function assertReceiverUp() {
  try {
    const res = await fetch(`${RECEIVER}/health`, { signal: AbortSignal.timeout(5000) });
    if (res.ok) return;
  } catch (err) {
    throw receiverNotAnswering(err);
  }
  throw receiverNotAnswering(new Error('/health did not answer 200'));
}

function receiverNotAnswering(err) {
  const why = err.cause?.code ?? err.cause?.message ?? err.message;
  return new UserError(
    `the webhook receiver does not answer at ${RECEIVER} (${why}).\n` +
      '`npm run up` starts it (or `npm run start:receiver` after `npm run build`); ' +
      'set RECEIVER_URL if it listens elsewhere.',
  );
}

// ---------------------------------------------------------------------------------------
// the readings: one per device per tick, with two incidents on a fixed script

/**
 * At least 24 ticks (one a second by default): greenhouse-1 runs hot for a third of the
 * run, then cools down; cellar-1's air turns dry for a fifth of it, later. greenhouse-2 has
 * one hot reading, which alerts nobody (3 of 5 are needed).
 */
function script(durationS) {
  const ticks = Math.max(24, Math.round(durationS));
  const hot = [2, 2 + Math.max(6, Math.round(ticks * 0.35))];
  const dryStart = Math.max(hot[1] + 2, Math.round(ticks * 0.5));
  const dry = [dryStart, dryStart + Math.max(4, Math.round(ticks * 0.2))];
  const blip = Math.round(ticks * 0.4);
  return { ticks, intervalMs: (durationS * 1000) / ticks, hot, dry, blip };
}

function readingsAt(tick, s) {
  const wobble = (n) => Math.round((Math.sin(tick * 0.7 + n) * 0.8 + n * 0.3) * 10) / 10;
  const within = ([from, to]) => tick >= from && tick < to;
  return {
    'greenhouse-1': {
      temperature: (within(s.hot) ? 34 : 24) + wobble(1),
      humidity: 55 + wobble(2),
    },
    'greenhouse-2': {
      temperature: (tick === s.blip ? 31.5 : 23) + wobble(3),
      humidity: 60 + wobble(4),
    },
    'cellar-1': {
      temperature: 14 + wobble(5),
      humidity: (within(s.dry) ? 19 : 48) + wobble(6),
    },
  };
}

function narrate(tick, s) {
  if (tick === s.hot[0]) return 'greenhouse-1 heats up (34 °C; the rule wants 3 of 5 above 30)';
  if (tick === s.hot[1]) return 'greenhouse-1 cools down (24 °C)';
  if (tick === s.blip) return 'greenhouse-2: one reading of 31.5 °C (1 of 5: no alert)';
  if (tick === s.dry[0]) return 'cellar-1 air turns dry (19 % humidity; 2 of 3 below 25)';
  if (tick === s.dry[1]) return 'cellar-1 humidity back to 48 %';
  return null;
}

// ---------------------------------------------------------------------------------------
// watching: alerts and deliveries through the api, verified deliveries on the receiver

class Watcher {
  constructor(ctx, since, log) {
    this.ctx = ctx;
    this.since = since;
    this.log = log;
    this.alerts = new Map(); // id → status
    this.deliveries = new Map(); // id → delivery
    this.received = new Map(); // webhook-id + type → receiver entry
    this.firstVerifiedAt = null;
    this.acked = new Set();
    this.receiverError = null;
    this.ruleNames = new Map(ctx.rules.map((r) => [r.id, r.name]));
    this.deviceNames = new Map(ctx.devices.map((d) => [d.id, d.external_id]));
  }

  /** One look at the api and the receiver; what changed is printed in the order it happened. */
  async poll() {
    this.events = [];
    await Promise.all([this.pollAlerts(), this.pollDeliveries(), this.pollReceiver()]);
    this.events.sort((a, b) => a.at - b.at).forEach((e) => this.log(e.line, e.at));
  }

  event(at, line) {
    this.events.push({ at: typeof at === 'string' ? Date.parse(at) : at, line });
  }

  async pollAlerts() {
    const { api, project } = this.ctx;
    const from = encodeURIComponent(new Date(this.since).toISOString());
    const alerts = await api.listAll(`/projects/${project.id}/alerts?from=${from}`);
    for (const a of alerts.reverse()) {
      const before = this.alerts.get(a.id);
      if (before === a.status) continue;
      this.alerts.set(a.id, a.status);
      const what = `${this.ruleNames.get(a.rule_id) ?? a.rule_id} on ${this.deviceNames.get(a.device_id) ?? a.device_id}`;
      if (!before) this.event(a.created_at, `alert opened       ${what}`);
      if (a.status === 'acknowledged') this.event(a.acknowledged_at, `alert acknowledged ${what}`);
      if (a.status === 'resolved') this.event(a.resolved_at, `alert resolved     ${what}`);
      // An operator would acknowledge the dry-air alert: so does the demo, which adds an
      // alert.acknowledged delivery to the created and resolved ones.
      if (
        a.status === 'open' &&
        this.ruleNames.get(a.rule_id) === 'Air too dry' &&
        !this.acked.has(a.id)
      ) {
        this.acked.add(a.id);
        await api.post(`/alerts/${a.id}/ack`).catch(() => {}); // resolved meanwhile: fine
      }
    }
  }

  async pollDeliveries() {
    const { api, project, webhook } = this.ctx;
    const page = await api.get(
      `/projects/${project.id}/webhook-deliveries?webhook_id=${webhook.id}&limit=1000`,
    );
    for (const d of page.items) {
      if (Date.parse(d.created_at) < this.since) continue;
      const before = this.deliveries.get(d.id);
      this.deliveries.set(d.id, d);
      if (d.status === 'pending' && d.attempts > 0 && before?.attempts !== d.attempts) {
        this.event(
          Date.now(),
          `delivery retrying  ${d.event_type}: ${d.last_error ?? `HTTP ${d.last_status_code}`}`,
        );
      }
      if (d.status === 'failed' && before?.status !== 'failed') {
        this.event(
          Date.now(),
          `delivery FAILED    ${d.event_type}: ${d.last_error ?? `HTTP ${d.last_status_code}`}`,
        );
      }
    }
  }

  async pollReceiver() {
    let list;
    try {
      const res = await fetch(`${RECEIVER}/deliveries.json`, { signal: AbortSignal.timeout(5000) });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      list = await res.json();
      this.receiverError = null;
    } catch (err) {
      if (!this.receiverError) this.event(Date.now(), `receiver not answering: ${err.message}`);
      this.receiverError = err.message;
      return;
    }
    for (const r of list.slice().reverse()) {
      if (r.path !== '/demo' || Date.parse(r.received_at) < this.since) continue;
      let body;
      try {
        body = JSON.parse(r.body);
      } catch {
        continue;
      }
      if (body?.data?.project_id !== this.ctx.project.id) continue;
      const id = `${r.headers['webhook-id']} ${r.type}`;
      if (this.received.has(id) && this.received.get(id).verification.result === 'verified')
        continue;
      this.received.set(id, r);
      const verified = r.verification.result === 'verified';
      if (verified && this.firstVerifiedAt === null)
        this.firstVerifiedAt = Date.parse(r.received_at);
      const what = `${body.data.rule?.name ?? '?'} on ${body.data.device?.external_id ?? '?'}`;
      this.event(
        r.received_at,
        `received           ${r.type} (${what}) on the receiver: ` +
          (verified ? 'signature verified' : `signature ${r.verification.result}`),
      );
    }
  }

  counts() {
    const statuses = [...this.alerts.values()];
    const deliveries = [...this.deliveries.values()];
    const verified = [...this.received.values()].filter(
      (r) => r.verification.result === 'verified',
    );
    return {
      opened: statuses.length,
      resolved: statuses.filter((s) => s === 'resolved').length,
      succeeded: deliveries.filter((d) => d.status === 'succeeded').length,
      pending: deliveries.filter((d) => d.status === 'pending').length,
      failed: deliveries.filter((d) => d.status === 'failed').length,
      verified: verified.length,
    };
  }

  settled() {
    const c = this.counts();
    return c.opened > 0 && c.resolved === c.opened && c.pending === 0 && c.verified >= c.succeeded;
  }
}

// ---------------------------------------------------------------------------------------

run(async () => {
  if (!env.ADMIN_TOKEN) {
    throw new UserError('ADMIN_TOKEN is not set (put it in .env or the environment)');
  }
  const admin = new Api(API, { adminToken: env.ADMIN_TOKEN });
  await admin.assertUp();
  await assertReceiverUp();

  console.log(`demo: api ${PUBLIC_API}, receiver ${PUBLIC_RECEIVER}`);
  const ctx = await setUp(admin);
  const { org, project, key, devices, rules, webhook, notes } = ctx;
  console.log(`
  org       ${org.name.padEnd(14)} ${org.id}   (${notes.org})
  project   ${project.name.padEnd(14)} ${project.id}   (${notes.project})
  api key   ${key.key}   (new, scopes ${key.scopes.join(', ')})
  devices   ${devices.map((d) => `${d.external_id} [${d.tags.join(', ')}]`).join(', ')}   (${notes.devices})
  rules     ${rules.map((r) => `"${r.name}": ${describeRule(r)}`).join('\n            ')}
            (${notes.rules})
  webhook   ${webhook.url}   (${notes.webhook}; its secret is on the receiver, so deliveries verify)
`);

  const s = script(DURATION_S);
  const since = Date.now();
  const log = (line, at = Date.now()) =>
    console.log(`  +${((at - since) / 1000).toFixed(1).padStart(5)}s  ${line}`);
  const watcher = new Watcher(ctx, since, log);
  // A refused reading or a failed look is reported once per kind, and the demo goes on.
  const complaints = new Set();
  const complain = (line) => {
    if (!complaints.has(line)) log(line);
    complaints.add(line);
  };
  let stopping = false;
  process.once('SIGINT', () => {
    stopping = true;
  });

  console.log(
    `==> streaming readings: ${devices.length} devices, one reading each every ` +
      `${(s.intervalMs / 1000).toFixed(2)} s for ${DURATION_S} s (Ctrl-C stops early)`,
  );
  let lastPoll = 0;
  let tick = 0;
  for (; tick < s.ticks && !stopping; tick++) {
    const due = since + tick * s.intervalMs;
    if (due > Date.now()) await sleep(due - Date.now());
    if (Date.now() - lastPoll >= 1000) {
      lastPoll = Date.now();
      await watcher.poll().catch((err) => complain(`could not look at alerts: ${err.message}`));
    }
    const story = narrate(tick, s);
    if (story) log(story);
    const ts = new Date().toISOString();
    const readings = readingsAt(tick, s);
    await Promise.all(
      devices.map((d) =>
        ctx.api
          .post('/telemetry', {
            device_external_id: d.external_id,
            events: [{ ts, data: readings[d.external_id] }],
          })
          .catch((err) => complain(`a reading was not taken: ${err.message}`)),
      ),
    );
  }
  console.log(
    `==> stopped streaming after ${secondsSince(since)} s (${tick} readings per device)` +
      (stopping ? ', interrupted' : '') +
      `; waiting up to ${SETTLE_S} s for the last alerts to resolve and deliver`,
  );

  const settleUntil = Date.now() + SETTLE_S * 1000;
  for (;;) {
    await watcher.poll().catch((err) => complain(`could not look at alerts: ${err.message}`));
    if (watcher.settled() || Date.now() > settleUntil) break;
    await sleep(500);
  }

  const c = watcher.counts();
  console.log(
    `\nalerts: ${c.opened} opened, ${c.resolved} resolved · deliveries: ${c.succeeded} succeeded, ` +
      `${c.pending} pending, ${c.failed} failed · ${c.verified} verified on the receiver`,
  );
  if (watcher.firstVerifiedAt !== null) {
    console.log(
      `first verified delivery on the receiver ${((watcher.firstVerifiedAt - STARTED_AT) / 1000).toFixed(1)} s ` +
        `after the demo started (${((watcher.firstVerifiedAt - since) / 1000).toFixed(1)} s after the first reading)`,
    );
  }

  const vars = [shellAssign('API', PUBLIC_API), shellAssign('PROJECT', project.id)];
  vars.push(shellAssign('KEY', key.key));
  console.log(`
Look at it (the key is a fresh one; each run mints another):

  export ${vars.join(' ')}
  curl -s -H "X-API-Key: $KEY" "$API/projects/$PROJECT/devices"
  curl -s -H "X-API-Key: $KEY" "$API/projects/$PROJECT/rules"
  curl -s -H "X-API-Key: $KEY" "$API/projects/$PROJECT/alerts"
  curl -s -H "X-API-Key: $KEY" "$API/projects/$PROJECT/webhook-deliveries"
  curl -s -H "X-API-Key: $KEY" "$API/telemetry/devices/${devices[0].id}/telemetry/latest"

  receiver page: ${PUBLIC_RECEIVER}/   (or ${PUBLIC_RECEIVER}/deliveries.json)
  web console:   ${PUBLIC_API}/console/   (sign in with the key above)
`);

  if (c.opened === 0) {
    throw new UserError(
      'no alert opened: is the worker running? (`npm run up` starts it; its log is .run/worker.log)',
    );
  }
  if (c.succeeded === 0) {
    const failed = [...watcher.deliveries.values()].find((d) => d.last_error || d.last_status_code);
    throw new UserError(
      'no delivery succeeded' +
        (failed
          ? `: the last attempt said ${failed.last_error ?? `HTTP ${failed.last_status_code}`}`
          : '') +
        `. The worker must reach ${WEBHOOK_URL} (WEBHOOK_ALLOW_PRIVATE_NETWORKS=true for a local receiver).`,
    );
  }
  if (stopping) process.exitCode = 130;
});
