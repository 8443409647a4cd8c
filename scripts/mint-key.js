// Mints an API key with every scope for the project called NAME, through the admin API:
// the org and the project (both named NAME) are created when missing and reused when they
// exist, so running it again mints another key for the same project. The key is shown
// only once. ADMIN_TOKEN (and API_URL or PORT) come from the environment or .env.
//
//   npm run mint-key -- [NAME] [--export]
//
// --export prints only `export API=… ORG=… PROJECT=… KEY=…` on stdout (what it did goes
// to stderr), for `eval "$(npm run --silent mint-key -- NAME --export)"`.
'use strict';
const {
  Api,
  UserError,
  apiUrl,
  ensureOrgAndProject,
  loadEnv,
  run,
  shellAssign,
} = require('./api-client');

const env = loadEnv();
const args = process.argv.slice(2);
const exportMode = args.includes('--export');
const unknown = args.filter((a) => a.startsWith('-') && a !== '--export');
const name = args.find((a) => !a.startsWith('-')) || `demo-${Date.now().toString(36)}`;

run(async () => {
  if (unknown.length > 0)
    throw new UserError(
      `unknown option ${unknown.join(', ')}; usage: npm run mint-key -- [NAME] [--export]`,
    );
  if (!env.ADMIN_TOKEN)
    throw new UserError('ADMIN_TOKEN is not set (put it in .env or the environment)');
  const api = apiUrl(env);
  const admin = new Api(api, { adminToken: env.ADMIN_TOKEN });
  await admin.assertUp();

  const { org, project, orgExisted, projectExisted } = await ensureOrgAndProject(admin, name);
  const key = await admin.post(`/projects/${project.id}/api-keys`, { name: 'mint-key' });

  const what =
    orgExisted && projectExisted
      ? `org and project "${project.name}" existed; minted a new key`
      : orgExisted
        ? `org "${org.name}" existed; created project "${project.name}" and minted a key`
        : `created org and project "${project.name}" and minted a key`;

  if (exportMode) {
    console.error(`${what} (scopes: ${key.scopes.join(', ')})`);
    const vars = { API: api, ORG: org.id, PROJECT: project.id, KEY: key.key };
    console.log(
      `export ${Object.entries(vars)
        .map(([k, v]) => shellAssign(k, v))
        .join(' ')}`,
    );
    return;
  }
  console.log(what);
  console.log(`org      ${org.id}\nproject  ${project.id}`);
  console.log(`api key  ${key.key}   (shown once; scopes: ${key.scopes.join(', ')})`);
  console.log(`\ntry:  curl -H 'X-API-Key: ${key.key}' ${api}/projects/${project.id}/devices`);
});
