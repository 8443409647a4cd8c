import createClient from 'openapi-fetch';
import type { components, paths } from './schema';

/** The API's schemas, as generated from docs/openapi.json (`npm run console:types`). */
export type Schemas = components['schemas'];
export type Api = ReturnType<typeof createApi>;

/**
 * Where the api is: the console is served at `<api>/console/`, so the api is one level
 * up from the page, whatever prefix an ingress adds.
 */
export function apiBase(pageUrl: string = document.baseURI): string {
  return new URL('../', pageUrl).href.replace(/\/$/, '');
}

/**
 * A typed client of the public API that presents `key` on every request. The key goes
 * in a header only: never in a URL, where logs and the history would keep it.
 */
export function createApi(key: string, baseUrl: string = apiBase()) {
  const client = createClient<paths>({ baseUrl });
  client.use({
    onRequest({ request }) {
      request.headers.set('X-API-Key', key);
      return request;
    },
  });
  return client;
}
