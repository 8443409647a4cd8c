// Shared by scripts/mint-key.js and scripts/demo.js: the settings they read, a small client
// of the public HTTP api (global fetch, no build needed) and "find it by name, or create it"
// for orgs and projects.
'use strict';

/**
 * The environment with `.env` of the working directory underneath it (the environment
 * wins, as in the apps). `quiet`: dotenv 17 otherwise logs a line, which would end up in
 * the output of `mint-key --export`.
 */
function loadEnv() {
  require('dotenv').config({ quiet: true });
  return process.env;
}

/** Where the api answers: API_URL, else 127.0.0.1 on PORT (8000). No trailing slash. */
function apiUrl(env) {
  return trimSlash(env.API_URL || `http://127.0.0.1:${env.PORT || 8000}`);
}

/** Where the local webhook receiver answers: RECEIVER_URL, else RECEIVER_HOST:RECEIVER_PORT. */
function receiverUrl(env) {
  if (env.RECEIVER_URL) return trimSlash(env.RECEIVER_URL);
  let host = env.RECEIVER_HOST || '127.0.0.1';
  if (host === '0.0.0.0' || host === '::')
    host = '127.0.0.1'; // listening everywhere
  else if (host.includes(':')) host = `[${host}]`; // an IPv6 address in a URL
  return `http://${host}:${env.RECEIVER_PORT || 9000}`;
}

function trimSlash(url) {
  return url.replace(/\/+$/, '');
}

class ApiError extends Error {
  constructor(method, path, status, body) {
    const message = body && typeof body === 'object' ? body.message : body;
    super(`${method} ${path}: ${status} ${message ?? ''}`.trim());
    this.status = status;
    this.body = body;
  }
}

/** Something the user has to fix (printed as is, exit 1), as opposed to a bug. */
class UserError extends Error {}

class Api {
  /** `credential`: `{ adminToken }` or `{ apiKey }`. */
  constructor(base, credential) {
    this.base = base;
    this.headers = credential.adminToken
      ? { authorization: `Bearer ${credential.adminToken}` }
      : { 'x-api-key': credential.apiKey };
  }

  withKey(apiKey) {
    return new Api(this.base, { apiKey });
  }

  async request(method, path, body) {
    let res;
    try {
      res = await fetch(`${this.base}${path}`, {
        method,
        headers: {
          ...this.headers,
          ...(body !== undefined && { 'content-type': 'application/json' }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(15000),
      });
    } catch (err) {
      throw notAnswering(this.base, err);
    }
    const text = await res.text();
    let json;
    try {
      json = text === '' ? undefined : JSON.parse(text);
    } catch {
      json = text;
    }
    if (res.status === 401 && this.headers.authorization) {
      throw new UserError(
        `the api at ${this.base} refused ADMIN_TOKEN (401): use the api's own ADMIN_TOKEN ` +
          '(in .env, or the environment)',
      );
    }
    if (!res.ok) throw new ApiError(method, path, res.status, json);
    return json;
  }

  get(path) {
    return this.request('GET', path);
  }

  post(path, body = {}) {
    return this.request('POST', path, body);
  }

  patch(path, body) {
    return this.request('PATCH', path, body);
  }

  /** Every item of a `{items, next_cursor}` list, following the cursors. */
  async listAll(path) {
    const items = [];
    const sep = path.includes('?') ? '&' : '?';
    let cursor = null;
    do {
      const page = await this.get(
        `${path}${sep}limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
      );
      items.push(...page.items);
      cursor = page.next_cursor;
    } while (cursor);
    return items;
  }

  /** The first item of a paginated list that `match`es, without reading past it. */
  async find(path, match) {
    const sep = path.includes('?') ? '&' : '?';
    let cursor = null;
    do {
      const page = await this.get(
        `${path}${sep}limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
      );
      const found = page.items.find(match);
      if (found) return found;
      cursor = page.next_cursor;
    } while (cursor);
    return undefined;
  }

  /** Exits with a clear message unless the api answers /health/ready. */
  async assertUp() {
    let res;
    try {
      res = await fetch(`${this.base}/health/ready`, { signal: AbortSignal.timeout(5000) });
    } catch (err) {
      throw notAnswering(this.base, err);
    }
    if (!res.ok) {
      throw new UserError(
        `the api at ${this.base} is up but not ready (${res.status}): is PostgreSQL or Redis ` +
          'down? (`npm run up` starts everything)',
      );
    }
  }
}

function notAnswering(base, err) {
  const why = err.cause?.code ?? err.cause?.message ?? err.message;
  return new UserError(
    `the api does not answer at ${base} (${why}).\n` +
      'Start the stack first: `npm run up` (or `docker compose up`), or set API_URL.',
  );
}

/**
 * The org and the project called `name` (org and project get the same name, compared
 * case-insensitively as the api does), created when missing. Says what existed.
 */
async function ensureOrgAndProject(admin, name) {
  const same = (item) => item.name.toLowerCase() === name.toLowerCase();
  let org = await admin.find('/orgs', same);
  const orgExisted = Boolean(org);
  if (!org) {
    org = await createOr409(
      () => admin.post('/orgs', { name }),
      () => admin.find('/orgs', same), // created meanwhile by someone else
    );
  }
  let project = await admin.find(`/orgs/${org.id}/projects`, same);
  const projectExisted = Boolean(project);
  if (!project) {
    project = await createOr409(
      () => admin.post(`/orgs/${org.id}/projects`, { name }),
      () => admin.find(`/orgs/${org.id}/projects`, same),
    );
  }
  return { org, project, orgExisted, projectExisted };
}

/** `create()`; on a 409 (it exists after all) whatever `lookup()` finds. */
async function createOr409(create, lookup) {
  try {
    return await create();
  } catch (err) {
    if (!(err instanceof ApiError) || err.status !== 409) throw err;
    const found = await lookup();
    if (!found) throw err;
    return found;
  }
}

/** `KEY='value'` for a POSIX shell. */
function shellAssign(name, value) {
  return `${name}='${String(value).replace(/'/g, `'\\''`)}'`;
}

/** Runs `main`, printing a UserError's message (or any error) and exiting 1. */
function run(main) {
  main().catch((err) => {
    console.error(
      err instanceof UserError || err instanceof ApiError ? `error: ${err.message}` : err,
    );
    process.exit(1);
  });
}

module.exports = {
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
};
