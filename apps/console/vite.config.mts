import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

/**
 * The web console: a static single-page app the api serves at /console (CONSOLE_DIR).
 * Relative asset paths (`base: './'`) so the same build works under any prefix an
 * ingress puts in front of the api.
 */
export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: './',
  // Preact's automatic JSX runtime (tsconfig's jsxImportSource is for the type check).
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    outDir: '../../dist/console',
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: true,
  },
  server: {
    // `npm run dev:console`: the api on :8000 answers the console's requests.
    proxy: Object.fromEntries(
      [
        '/api-keys',
        '/projects',
        '/devices',
        '/telemetry',
        '/rules',
        '/alerts',
        '/silences',
        '/webhooks',
        '/webhook-deliveries',
      ].map((p) => [p, 'http://127.0.0.1:8000']),
    ),
  },
});
