#!/usr/bin/env node
// The console's first page, gzipped: index.html and every script, stylesheet and
// modulepreload it names (what a browser fetches before anything shows). Fails above the
// budget, so a heavy dependency cannot slip in unnoticed.
const { readFileSync } = require('node:fs');
const { join } = require('node:path');
const { gzipSync } = require('node:zlib');

const BUDGET_BYTES = 300 * 1024;
const dir = join(__dirname, '..', 'dist', 'console');
const html = readFileSync(join(dir, 'index.html'), 'utf8');
const assets = [...html.matchAll(/(?:src|href)="\.?\/?(assets\/[^"]+\.(?:js|css))"/g)].map((m) => m[1]);
const files = ['index.html', ...new Set(assets)];
let total = 0;
for (const file of files) {
  const raw = readFileSync(join(dir, file));
  const gz = gzipSync(raw, { level: 9 }).length;
  total += gz;
  console.log(`  ${file.padEnd(40)} ${(raw.length / 1024).toFixed(1).padStart(7)} KB  ${(gz / 1024).toFixed(1).padStart(6)} KB gzipped`);
}
console.log(`console first page: ${(total / 1024).toFixed(1)} KB gzipped (budget ${BUDGET_BYTES / 1024} KB)`);
if (total > BUDGET_BYTES) {
  console.error('over the budget: look at what the bundle took in (vite build --mode production, rollup visualiser)');
  process.exit(1);
}
