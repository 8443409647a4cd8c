import { useState } from 'preact/hooks';
import type { Schemas } from '../api/client';
import { RuleEditor } from '../components/RuleEditor';
import { ActionButton, Badge, Empty, ErrorBanner, Loading, Head } from '../components/ui';
import { describeRule } from '../lib/rule-form';
import { useRules } from '../lib/use-rules';
import { useSession } from '../session';

export function RulesPage() {
  const { key } = useSession();
  const [editing, setEditing] = useState<Schemas['RuleResponse'] | 'new' | null>(null);
  const rules = useRules();

  return (
    <section aria-labelledby="rules-title">
      <h1 id="rules-title">Rules</h1>
      {editing ? (
        <RuleEditor
          rule={editing === 'new' ? null : editing}
          onSaved={() => {
            setEditing(null);
            rules.reload();
          }}
          onCancel={() => setEditing(null)}
        />
      ) : (
        <ActionButton onClick={() => setEditing('new')}>New rule</ActionButton>
      )}
      <ErrorBanner error={rules.error} />
      <Loading when={rules.loading && !rules.data} />
      {rules.data && rules.data.length === 0 && <Empty>No rules yet.</Empty>}
      {rules.data && rules.data.length > 0 && (
        <table class="table">
          <Head columns={['Name', 'Condition', 'Devices', 'Cooldown', 'State', 'Actions']} />
          <tbody>
            {rules.data.map((r) => (
              <tr key={r.id}>
                <td>{r.name}</td>
                <td>
                  <code>{describeRule(r)}</code>
                </td>
                <td>
                  {r.scope === 'TAG' ? `tag ${r.tag}` : r.scope === 'ALL' ? 'all' : 'assigned'}
                </td>
                <td>{r.cooldown_seconds} s</td>
                <td>
                  {r.enabled ? (
                    <Badge kind="online">enabled</Badge>
                  ) : (
                    <Badge kind="never">disabled</Badge>
                  )}
                </td>
                <td>
                  <button type="button" onClick={() => setEditing(r)}>
                    {key.scopes.includes('manage') ? 'Edit' : 'View'}
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
