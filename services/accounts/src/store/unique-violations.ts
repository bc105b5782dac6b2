/**
 * Which unique rule of the read model refused a write, from Postgres' unique_violation (23505):
 * another user took the name or address first, an external account was created meanwhile, or a
 * second "first user" lost the race for the one-row `site_bootstrap` table.
 */
export type UniqueRule = 'username' | 'email' | 'external-account' | 'first-user' | 'other';

export function violatedUniqueRule(err: unknown): UniqueRule | null {
  const e = err as { code?: unknown; constraint?: unknown; message?: unknown } | null;
  if (e?.code !== '23505') return null;
  // PGlite names the constraint only in the message.
  const constraint =
    typeof e.constraint === 'string'
      ? e.constraint
      : (/constraint "([^"]+)"/.exec(String(e.message))?.[1] ?? '');
  if (constraint.startsWith('users_username')) return 'username';
  if (constraint.startsWith('user_emails')) return 'email';
  if (constraint.startsWith('users_external_account')) return 'external-account';
  if (constraint === 'site_bootstrap_pkey') return 'first-user';
  return 'other';
}
