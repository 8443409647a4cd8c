import type { ComponentChildren } from 'preact';
import { useState } from 'preact/hooks';
import { messageOf } from '../api/errors';
import { type Action, can, needs } from '../lib/permissions';
import { useSession } from '../session';

/** A button for something the key may not be allowed to do: greyed out, and says why. */
export function ActionButton(props: {
  action?: Action;
  onClick: () => Promise<unknown> | void;
  children: ComponentChildren;
  /** Off for another reason than the key's scope (e.g. an alert already resolved). */
  disabled?: boolean;
  title?: string;
}) {
  const { action = 'manage', onClick, children } = props;
  const { key } = useSession();
  const [busy, setBusy] = useState(false);
  const allowed = can(key.scopes, action);
  return (
    <button
      type="button"
      disabled={!allowed || busy || Boolean(props.disabled)}
      title={allowed ? props.title : needs(action)}
      onClick={async () => {
        // A disabled button can still be clicked from script: the scope decides, not CSS.
        if (!allowed || props.disabled) return;
        setBusy(true);
        try {
          await onClick();
        } finally {
          setBusy(false);
        }
      }}
    >
      {children}
    </button>
  );
}

export function ErrorBanner({ error }: { error: unknown }) {
  if (!error) return null;
  return (
    <p class="error" role="alert">
      {messageOf(error)}
    </p>
  );
}

export function Loading({ when }: { when: boolean }) {
  return when ? (
    <p class="muted" aria-live="polite">
      Loading…
    </p>
  ) : null;
}

export function Badge({ kind, children }: { kind: string; children: ComponentChildren }) {
  return <span class={`badge badge-${kind}`}>{children}</span>;
}

export function Empty({ children }: { children: ComponentChildren }) {
  return <p class="muted empty">{children}</p>;
}

/** First / next page of a cursor-paged list. */
export function Pager(props: {
  cursor: string | undefined;
  next: string | null | undefined;
  onPage: (cursor: string | undefined) => void;
}) {
  return (
    <div class="pager">
      {props.cursor && (
        <button type="button" onClick={() => props.onPage(undefined)}>
          First page
        </button>
      )}
      {props.next && (
        <button type="button" onClick={() => props.onPage(props.next ?? undefined)}>
          Next page
        </button>
      )}
    </div>
  );
}

/** A table's header row: one `<th scope="col">` per column. */
export function Head({ columns }: { columns: string[] }) {
  return (
    <thead>
      <tr>
        {columns.map((c) => (
          <th scope="col" key={c}>
            {c}
          </th>
        ))}
      </tr>
    </thead>
  );
}
