/** Shared set-up of the notifications integration tests: a migrated database and a site config. */
import { migrate } from '@sitemail/db';
import type { SiteConfig } from '@sitemail/site-config';
import { type TestDatabase, testDatabase } from '@sitemail/testkit';
import { migrations } from '../src/store/migrations.ts';

export async function notificationsDb(
  label: string,
  options: { maxConnections?: number } = {},
): Promise<TestDatabase> {
  const db = await testDatabase(label, options);
  await migrate(db, 'notifications', migrations);
  return db;
}

export function siteFor(
  smtp: { host: string; port: number } | undefined,
  extra: Partial<SiteConfig> = {},
): SiteConfig {
  return {
    externalURL: 'https://sourcegraph.example.com',
    'email.senderName': 'Example Instance',
    'email.address': 'from@example.com',
    ...(smtp
      ? { 'email.smtp': { authentication: 'none', host: smtp.host, port: smtp.port, noVerifyTLS: false } }
      : {}),
    'auth.providers': [{ type: 'builtin' }],
    ...extra,
  };
}

/** Polls `check` until it returns a value (not undefined), or fails after `timeoutMs`. */
export async function eventually<T>(
  check: () => Promise<T | undefined>,
  timeoutMs = 20_000,
  what = 'condition',
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
