import { createContext } from 'preact';
import { useContext } from 'preact/hooks';
import type { Api, Schemas } from './api/client';

export type Scope = Schemas['ApiKeyResponse']['scopes'][number];

/**
 * The key lives in this tab's sessionStorage: gone when the tab closes, never sent
 * anywhere but the api's X-API-Key header, never put in a URL.
 */
const STORAGE_KEY = 'telemetry-console:api-key';

export const storedKey = (storage: Storage = sessionStorage): string | null =>
  storage.getItem(STORAGE_KEY);
export const storeKey = (key: string, storage: Storage = sessionStorage): void =>
  storage.setItem(STORAGE_KEY, key);
export const forgetKey = (storage: Storage = sessionStorage): void =>
  storage.removeItem(STORAGE_KEY);

export interface Session {
  api: Api;
  key: Schemas['CurrentApiKeyResponse'];
  signOut: () => void;
}

export const SessionContext = createContext<Session | null>(null);

export function useSession(): Session {
  const session = useContext(SessionContext);
  if (!session) throw new Error('useSession outside a signed-in console');
  return session;
}
