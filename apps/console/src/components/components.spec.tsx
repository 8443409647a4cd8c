import { fireEvent, render, screen, waitFor } from '@testing-library/preact';
import type { ComponentChildren } from 'preact';
import type { Api, Schemas } from '../api/client';
import { ApiError } from '../api/errors';
import { signInMessage } from '../pages/SignIn';
import { savedRule } from '../testing/fixtures';
import { type Scope, SessionContext } from '../session';
import { RuleEditor } from './RuleEditor';
import { ActionButton } from './ui';

// uPlot draws on a canvas, which jsdom has not: the chart is the browser tests' part.
jest.mock('./TimeChart', () => ({ TimeChart: () => null }));

const keyWith = (scopes: Scope[]): Schemas['CurrentApiKeyResponse'] => ({
  id: 'k',
  name: 'console',
  prefix: 'tpk_x',
  scopes,
  created_at: '2026-01-01T00:00:00Z',
  last_used_at: null,
  revoked_at: null,
  project: {
    id: 'p',
    org_id: 'o',
    name: 'Greenhouses',
    auto_register_devices: true,
    retention_days: null,
    created_at: '2026-01-01T00:00:00Z',
  },
});

function withSession(scopes: Scope[], api: Partial<Api> = {}) {
  return ({ children }: { children: ComponentChildren }) => (
    <SessionContext.Provider
      value={{ api: api as Api, key: keyWith(scopes), signOut: () => undefined }}
    >
      {children}
    </SessionContext.Provider>
  );
}

describe('ActionButton', () => {
  it('is greyed out for a key without the scope, and says which scope it needs', () => {
    const onClick = jest.fn();
    render(<ActionButton onClick={onClick}>Acknowledge</ActionButton>, {
      wrapper: withSession(['read']),
    });
    const button = screen.getByRole('button', { name: 'Acknowledge' }) as HTMLButtonElement;
    expect(button.disabled).toBe(true);
    expect(button.title).toMatch(/manage scope/);
    fireEvent.click(button);
    expect(onClick).not.toHaveBeenCalled();
  });

  it('works for a key with the scope, and is busy while the action runs', async () => {
    let finish!: () => void;
    const onClick = jest.fn(() => new Promise<void>((r) => (finish = r)));
    render(<ActionButton onClick={onClick}>Resolve</ActionButton>, {
      wrapper: withSession(['read', 'manage']),
    });
    const button = screen.getByRole('button', { name: 'Resolve' }) as HTMLButtonElement;
    expect(button.disabled).toBe(false);
    fireEvent.click(button);
    await waitFor(() => expect(button.disabled).toBe(true));
    finish();
    await waitFor(() => expect(button.disabled).toBe(false));
    expect(onClick).toHaveBeenCalledTimes(1);
  });
});

it('signInMessage says what to do for a wrong key and for an ingest-only key', () => {
  expect(signInMessage(new ApiError(401, 'the API key is invalid or revoked'))).toMatch(
    /not valid/,
  );
  expect(signInMessage(new ApiError(403, 'lacks read'))).toMatch(/needs a key with the read scope/);
  expect(signInMessage(new ApiError(0, 'The api cannot be reached.'))).toBe(
    'The api cannot be reached.',
  );
});

describe('RuleEditor', () => {
  const refused = {
    error: {
      statusCode: 422,
      error: 'Unprocessable Entity',
      message: 'the request is invalid',
      details: [{ field: 'required_k', message: 'required_k must not be greater than window_n' }],
    },
    response: { ok: false, status: 422, statusText: '', headers: new Map() },
  };

  it("shows the API's 422 beside the field it names, and sends only what changed", async () => {
    const PATCH = jest.fn().mockResolvedValue(refused);
    const rule = savedRule();
    render(<RuleEditor rule={rule} onSaved={jest.fn()} onCancel={jest.fn()} />, {
      wrapper: withSession(['read', 'manage'], { PATCH } as unknown as Partial<Api>),
    });
    fireEvent.input(screen.getByLabelText('Breaching (k of n)'), { target: { value: '9' } });
    fireEvent.click(screen.getByRole('button', { name: 'Save changes' }));
    await screen.findByText('the request is invalid');
    expect(PATCH).toHaveBeenCalledWith('/rules/{rule_id}', {
      params: { path: { rule_id: 'r' } },
      body: { required_k: 9 },
    });
    const input = screen.getByLabelText('Breaching (k of n)');
    expect(input.getAttribute('aria-invalid')).toBe('true');
    expect(document.getElementById(input.getAttribute('aria-describedby')!)!.textContent).toBe(
      'required_k must not be greater than window_n',
    );
  });

  it('is read-only for a read key', () => {
    render(<RuleEditor rule={null} onSaved={jest.fn()} onCancel={jest.fn()} />, {
      wrapper: withSession(['read']),
    });
    expect((screen.getByLabelText('Name') as HTMLInputElement).disabled).toBe(true);
    expect(
      (screen.getByRole('button', { name: 'Create rule' }) as HTMLButtonElement).disabled,
    ).toBe(true);
    expect(screen.getByText(/Needs an API key with the manage scope/)).toBeTruthy();
  });
});
