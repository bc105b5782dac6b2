import type { Database } from '@sitemail/db';
import type { StoredEvent } from '@sitemail/event-store';
import {
  Counter,
  createMetricsRegistry,
  Histogram,
  metricsPlugin,
  type Registry,
  scrapeTimeGauge,
} from '@sitemail/service-kit';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { type CommandObserver, commandOutcome } from './application/metrics.ts';
import { outboxDepth } from './store/metrics.ts';

/** The name of accounts' outbox relay: its cursor row, and the outbox depth counted from it. */
export const ACCOUNTS_RELAY_NAME = 'accounts-events';

/** What the outbox relay reports to (`onPublished`, `onError` of `createOutboxRelay`). */
export interface RelayObserver {
  onPublished(events: StoredEvent[], at?: { ackedAt: number }): void;
  onError(): void;
}

export interface AccountsMetrics {
  registry: Registry;
  onCommand: CommandObserver;
  relay: RelayObserver;
  /** Told what a retention run removed, by link-token kind. */
  onRetentionPurged(byKind: Record<string, number>): void;
}

/**
 * accounts' own series, in the app's registry. The outbox depth is read from the database when
 * scraped; the relay's lag runs from the event's time (its command's, taken just before the
 * append commits) to the broker's acknowledgement.
 */
export function createAccountsMetrics(registry: Registry, db: Database): AccountsMetrics {
  const commands = new Counter({
    name: 'accounts_commands_total',
    help: 'Commands run, by type and outcome (accepted, refused:<code>, conflict, error)',
    labelNames: ['command', 'outcome'],
    registers: [registry],
  });
  scrapeTimeGauge({
    registry,
    name: 'accounts_outbox_depth',
    help: 'Committed events the outbox relay has not published yet',
    read: () => outboxDepth(db, ACCOUNTS_RELAY_NAME),
  });
  const lag = new Histogram({
    name: 'accounts_relay_lag_seconds',
    help: 'From an event committed (its command decided) to the bus acknowledging it',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
    registers: [registry],
  });
  const published = new Counter({
    name: 'accounts_relay_published_total',
    help: 'Events the outbox relay published and moved its cursor past',
    registers: [registry],
  });
  const errors = new Counter({
    name: 'accounts_relay_errors_total',
    help: 'Failed relay attempts (publish, database, lost lease); each is retried',
    registers: [registry],
  });
  const purged = new Counter({
    name: 'accounts_retention_purged_total',
    help: 'Expired link tokens the retention job removed, by kind',
    labelNames: ['kind'],
    registers: [registry],
  });
  return {
    registry,
    onRetentionPurged(byKind) {
      for (const [kind, n] of Object.entries(byKind)) purged.inc({ kind }, n);
    },
    onCommand: (command, err) => commands.inc({ command, outcome: commandOutcome(err) }),
    relay: {
      onPublished(events, at) {
        const ackedAt = at?.ackedAt ?? Date.now();
        published.inc(events.length);
        for (const e of events) lag.observe(Math.max(0, ackedAt - Date.parse(e.time)) / 1000);
      },
      onError: () => errors.inc(),
    },
  };
}

declare module 'fastify' {
  interface FastifyInstance {
    accountsMetrics: AccountsMetrics;
  }
}

/** `GET /metrics` with accounts' series, and `app.accountsMetrics` for the command runner and the relay. */
export const accountsMetricsPlugin = fp(
  async (app: FastifyInstance, opts: { db: Database }) => {
    const registry = createMetricsRegistry();
    app.decorate('accountsMetrics', createAccountsMetrics(registry, opts.db));
    await app.register(metricsPlugin, { registry });
  },
  { name: 'accounts-metrics' },
);
