import { useMemo, useState } from 'preact/hooks';
import { Link, Redirect, Route, Router, Switch } from 'wouter-preact';
import { useHashLocation } from 'wouter-preact/use-hash-location';
import { createApi, type Schemas } from './api/client';
import { AlertsPage } from './pages/Alerts';
import { DevicePage } from './pages/Device';
import { DevicesPage } from './pages/Devices';
import { RulesPage } from './pages/Rules';
import { SignIn } from './pages/SignIn';
import { WebhooksPage } from './pages/Webhooks';
import { forgetKey, type Session, SessionContext, storedKey, storeKey } from './session';

const NAV = [
  ['/devices', 'Devices'],
  ['/alerts', 'Alerts'],
  ['/rules', 'Rules'],
  ['/webhooks', 'Webhooks'],
] as const;

export function App() {
  const [signedIn, setSignedIn] = useState<{
    key: string;
    info: Schemas['CurrentApiKeyResponse'];
  } | null>(null);
  const session = useMemo<Session | null>(
    () =>
      signedIn && {
        api: createApi(signedIn.key),
        key: signedIn.info,
        signOut: () => {
          forgetKey();
          setSignedIn(null);
        },
      },
    [signedIn],
  );

  if (!session) {
    return (
      <SignIn
        remembered={storedKey()}
        onSignedIn={(key, info) => {
          storeKey(key);
          setSignedIn({ key, info });
        }}
        onForget={forgetKey}
      />
    );
  }
  const readOnly = !session.key.scopes.includes('manage');
  return (
    <SessionContext.Provider value={session}>
      <Router hook={useHashLocation}>
        <header class="top">
          <a class="skip" href="#main">
            Skip to content
          </a>
          <span class="brand">Telemetry console</span>
          <nav aria-label="Main">
            <ul>
              {NAV.map(([href, label]) => (
                <li key={href}>
                  <Link href={href} className={(active: boolean) => (active ? 'active' : '')}>
                    {label}
                  </Link>
                </li>
              ))}
            </ul>
          </nav>
          <span class="who">
            <span>
              Project <strong>{session.key.project.name}</strong> · key{' '}
              {session.key.name || session.key.prefix}
              {readOnly && <span class="badge badge-readonly">read only</span>}
            </span>
            <button type="button" onClick={session.signOut}>
              Sign out
            </button>
          </span>
        </header>
        <main id="main" tabIndex={-1}>
          <Switch>
            <Route path="/devices" component={DevicesPage} />
            <Route path="/devices/:id">{(p: { id: string }) => <DevicePage id={p.id} />}</Route>
            <Route path="/alerts" component={AlertsPage} />
            <Route path="/rules" component={RulesPage} />
            <Route path="/webhooks" component={WebhooksPage} />
            <Route>
              <Redirect to="/devices" />
            </Route>
          </Switch>
        </main>
      </Router>
    </SessionContext.Provider>
  );
}
