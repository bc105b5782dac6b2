/** Shared set-up of the retry, pause and outage tests: queued deliveries and a free port. */
import { createServer } from 'node:net';
import type { SiteConfig } from '@sitemail/site-config';
import type { TestDatabase } from '@sitemail/testkit';
import { handleEvent } from '../src/application/handle-event.ts';
import { codeMonitorTriggered, Stream } from './events.ts';

export const freePort = () =>
  new Promise<number>((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });

/** A verified user and `n` code-monitor emails for them, queued at `now`. */
export async function queueProductEmails(
  db: TestDatabase,
  site: SiteConfig,
  n: number,
  now = new Date(),
): Promise<string[]> {
  const user = new Stream();
  await handleEvent(
    db,
    user.created({ email: 'alice@example.com', verified: true, provider: 'github' }),
    site,
    now,
  );
  const ids: string[] = [];
  for (let i = 1; i <= n; i++) {
    const handled = await handleEvent(db, codeMonitorTriggered(user.userId, `monitor ${i}`, i), site, now);
    ids.push(...handled.deliveryIds);
  }
  return ids;
}

/** A new user with an unverified address and a verification email whose link expires at `expiresAt`. */
export async function queueVerificationEmail(
  db: TestDatabase,
  site: SiteConfig,
  email: string,
  expiresAt: Date,
  now = new Date(),
): Promise<string> {
  const user = new Stream();
  await handleEvent(db, user.created({ email, verified: false }), site, now);
  const handled = await handleEvent(
    db,
    user.next('EmailVerificationRequested', {
      email,
      token: user.seal(`verify-${email}`, 'EmailVerificationRequested'),
      expiresAt: expiresAt.toISOString(),
    }),
    site,
    now,
  );
  if (handled.deliveryIds.length !== 1) throw new Error(`expected one verification delivery for ${email}`);
  return handled.deliveryIds[0]!;
}

export interface DeliveryState {
  status: string;
  attempt_count: number;
  last_error: string | null;
  failure_reason: string | null;
  give_up_at: Date | null;
  created_at: Date;
}

export async function deliveryState(db: TestDatabase, id: string): Promise<DeliveryState> {
  const { rows } = await db.query<DeliveryState>(
    `SELECT status, attempt_count, last_error, failure_reason, give_up_at, created_at FROM deliveries WHERE id = $1`,
    [id],
  );
  return rows[0]!;
}

export async function attemptOutcomes(db: TestDatabase, id: string): Promise<string[]> {
  const { rows } = await db.query<{ outcome: string }>(
    'SELECT outcome FROM delivery_attempts WHERE delivery_id = $1 ORDER BY attempt',
    [id],
  );
  return rows.map((r) => r.outcome);
}
