import type { Database } from '@sitemail/db';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { startRetention } from './application/retention.ts';

/**
 * The retention job as a plugin of the running service (`startAccounts`): started with the app,
 * stopped when it closes; each run that removed something logs the counts and adds them to
 * `accounts_retention_purged_total{kind}` (never a token hash or
 * an address). Tests run `runRetention` with their own clock instead.
 */
export const retentionPlugin = fp(
  async (app: FastifyInstance, opts: { db: Database; intervalMs?: number }) => {
    const job = startRetention({
      db: opts.db,
      ...(opts.intervalMs ? { intervalMs: opts.intervalMs } : {}),
      onPurged: (removed) => {
        app.accountsMetrics.onRetentionPurged(removed.byKind);
        app.log.info({ retention: removed }, 'retention: removed expired link tokens');
      },
      onError: (err) =>
        app.log.warn({ reason: err instanceof Error ? err.message : String(err) }, 'retention run failed'),
    });
    app.addHook('onClose', () => job.stop());
  },
  { name: 'accounts-retention' },
);
