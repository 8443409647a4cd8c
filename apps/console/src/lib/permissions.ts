import type { Scope } from '../session';

/** What the console does, and the scope the API asks for it. */
export type Action = 'read' | 'manage';

export const can = (scopes: readonly Scope[], action: Action): boolean => scopes.includes(action);

/** Why a control is greyed out, in the words a person needs. */
export const needs = (action: Action): string =>
  `Needs an API key with the ${action} scope; this key may only ${action === 'manage' ? 'look' : 'send telemetry'}.`;
