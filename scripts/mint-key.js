// Creates an org, a project and an API key with every scope through the admin API, and
// prints the key (shown only once). Usage: npm run mint-key -- [project-name]
const fs = require('node:fs');

const env = { ...readDotEnv('.env'), ...process.env };
const api = env.API_URL || `http://127.0.0.1:${env.PORT || 8000}`;
const name = process.argv[2] || `demo-${Date.now().toString(36)}`;
if (!env.ADMIN_TOKEN) {
  console.error('ADMIN_TOKEN is not set (put it in .env or the environment)');
  process.exit(1);
}

async function post(path, body) {
  const res = await fetch(`${api}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${env.ADMIN_TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const json = await res.json();
  if (!res.ok) throw new Error(`POST ${path}: ${res.status} ${json.message}`);
  return json;
}

function readDotEnv(file) {
  if (!fs.existsSync(file)) return {};
  return Object.fromEntries(
    fs.readFileSync(file, 'utf8').split('\n')
      .map((l) => /^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)\s*$/.exec(l))
      .filter(Boolean)
      .map((m) => [m[1], m[2].replace(/^(['"])(.*)\1$/, '$2')]),
  );
}

(async () => {
  const org = await post('/orgs', { name });
  const project = await post(`/orgs/${org.id}/projects`, { name });
  const key = await post(`/projects/${project.id}/api-keys`, { name: 'first key' });
  console.log(`org      ${org.id}\nproject  ${project.id}\napi key  ${key.key}   (shown once; scopes: ${key.scopes.join(', ')})`);
  console.log(`\ntry:  curl -H 'X-API-Key: ${key.key}' ${api}/projects/${project.id}/devices`);
})().catch((err) => {
  console.error(err.message);
  process.exit(1);
});
