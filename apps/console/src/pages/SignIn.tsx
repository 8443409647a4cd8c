import { useEffect, useState } from 'preact/hooks';
import { createApi, type Schemas } from '../api/client';
import { ApiError, messageOf, unwrap } from '../api/errors';

/** Why a key was refused, in words that say what to do. */
export function signInMessage(error: unknown): string {
  if (error instanceof ApiError) {
    if (error.status === 401)
      return 'This API key is not valid, or it was revoked. Check it, or ask for a new one.';
    if (error.status === 403)
      return 'This key may only send telemetry (the ingest scope). The console needs a key with the read scope.';
  }
  return messageOf(error);
}

export async function whoAmI(key: string): Promise<Schemas['CurrentApiKeyResponse']> {
  return unwrap(createApi(key).GET('/api-keys/current'));
}

export function SignIn(props: {
  remembered: string | null;
  onSignedIn: (key: string, info: Schemas['CurrentApiKeyResponse']) => void;
  onForget: () => void;
}) {
  const [key, setKey] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const tryKey = async (candidate: string, fromStorage: boolean) => {
    setBusy(true);
    setError(null);
    try {
      props.onSignedIn(candidate, await whoAmI(candidate));
    } catch (e) {
      // Only a refused key is forgotten: an api restarting or busy must not sign anyone out.
      if (fromStorage && e instanceof ApiError && (e.status === 401 || e.status === 403))
        props.onForget();
      setError(signInMessage(e));
    } finally {
      setBusy(false);
    }
  };

  // A reload of the tab signs in again with the key this tab already gave.
  useEffect(() => {
    if (props.remembered) void tryKey(props.remembered, true);
  }, []);

  return (
    <main id="main" class="signin">
      <h1>Telemetry console</h1>
      <p>
        Sign in with a project API key (<code>tpk_….…</code>). A key with the <strong>read</strong>{' '}
        scope can look; one with <strong>manage</strong> can also acknowledge alerts and change
        rules and webhooks.
      </p>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          if (key.trim()) void tryKey(key.trim(), false);
        }}
      >
        <label for="api-key">API key</label>
        <input
          id="api-key"
          name="api-key"
          type="password"
          autoComplete="off"
          spellcheck={false}
          value={key}
          onInput={(e) => setKey(e.currentTarget.value)}
          aria-describedby="key-note"
          required
        />
        <p id="key-note" class="muted">
          The key stays in this browser tab (session storage) and is sent only to this api, in the
          X-API-Key header. Closing the tab forgets it.
        </p>
        <button type="submit" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
        {error && (
          <p class="error" role="alert">
            {error}
          </p>
        )}
      </form>
      <p class="muted">
        No key? An operator mints one with <code>npm run mint-key -- my-project</code>, or{' '}
        <code>POST /projects/&#123;id&#125;/api-keys</code> with the admin token.{' '}
        <a href="../docs">API reference</a>
      </p>
    </main>
  );
}
