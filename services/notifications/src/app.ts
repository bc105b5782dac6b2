import { type Bus, type Consumer, type ConsumerState, describeConsumerState } from '@sitemail/bus';
import type { LinkTokenKey } from '@sitemail/contracts';
import { type Database, migrate } from '@sitemail/db';
import {
  docsPlugin,
  healthPlugin,
  httpTracingPlugin,
  problemsPlugin,
  type ReadinessCheck,
  securityHeadersPlugin,
  validatorCompiler,
} from '@sitemail/service-kit';
import type { SiteConfig } from '@sitemail/site-config';
import type { FastifyBaseLogger, FastifyInstance, FastifyPluginAsync } from 'fastify';
import fp from 'fastify-plugin';
import { createNotificationsConsumer } from './application/consumer.ts';
import type { BackoffOptions } from './delivery/backoff.ts';
import type { RelayBreakerOptions } from './delivery/circuit-breaker.ts';
import { DeliveryWorker } from './delivery/worker.ts';
import { addressEventsRelayPlugin } from './fleet/address-events-relay.ts';
import { apiKeyAuthenticator } from './http/admin-auth.ts';
import { bounceRoutes } from './http/bounces.ts';
import { deliveryRoutes } from './http/deliveries.ts';
import { notificationsChallenge } from './http/problem.ts';
import { suppressionRoutes } from './http/suppressions.ts';
import { testEmailRoutes } from './http/test-email.ts';
import { unsubscribeRoutes } from './http/unsubscribe.ts';
import { notificationsMetricsPlugin } from './metrics.ts';

import { createMailer } from './smtp/index.ts';
import type { Mailer } from './smtp/types.ts';
import { pingDatabase } from './store/health.ts';
import { migrations } from './store/migrations.ts';

export interface WorkerSettings {
  /** Polling when nothing woke the worker (ms, default 1000). */
  pollIntervalMs?: number;
  /** SMTP connections kept open, and emails in flight (default 5). */
  poolSize?: number;
  /** A safety cap on attempts (default 1000); deliveries are retried by time (`email.delivery.maxAgeHours`). */
  maxAttempts?: number;
  backoff?: Partial<BackoffOptions>;
  /** The claim lease (ms, default 15 000): renewed by the worker, so only a dead one lets it run out. */
  claimTimeoutMs?: number;
  workerId?: string;
  /** When the queue pauses for a broken relay and how it probes (defaults: delivery/circuit-breaker.ts). */
  breaker?: Partial<RelayBreakerOptions>;
}

export interface NotificationsAppOptions {
  db: Database;
  /** Without a bus nothing is consumed (the HTTP API and the worker still run). */
  bus?: Bus;
  siteConfig: () => SiteConfig;
  linkTokenKeys: LinkTokenKey | LinkTokenKey[];
  /** false: no delivery worker in this instance (it only consumes and serves the log). */
  worker?: WorkerSettings | false;
  /** Apply migrations on start (default true). */
  migrate?: boolean;
  /** How long a delivery waits for a recipient not known yet before it is suppressed (ms, default 24 h). */
  awaitRecipientMs?: number;
}

declare module 'fastify' {
  interface FastifyInstance {
    notificationsDb: Database;
    mailer: Mailer;
    deliveryWorker: DeliveryWorker | undefined;
    notificationsConsumer: Consumer | undefined;
    /** The consumer was assigned its partitions and not stopped (readiness). */
    consumerRunning(): boolean;
  }
}

/** The service's database: migrated before anything uses it. The caller owns (and closes) the handle. */
const dbPlugin = fp<{ db: Database; migrate: boolean }>(
  async (app, o) => {
    if (o.migrate) {
      const applied = await migrate(o.db, 'notifications', migrations);
      if (applied.length) app.log.info({ applied }, 'notifications: migrations applied');
    }
    app.decorate('notificationsDb', o.db);
  },
  { name: 'notifications-db' },
);

/** One pooled mailer for the site config in force; rebuilt by itself when the SMTP settings change. */
const mailerPlugin = fp<{ siteConfig: () => SiteConfig; poolSize: number }>(
  async (app, o) => {
    const mailer = createMailer(o.siteConfig, { poolSize: o.poolSize, logger: app.log });
    app.decorate('mailer', mailer);
    app.addHook('onClose', async () => {
      await mailer.close();
    });
  },
  { name: 'notifications-mailer', dependencies: ['notifications-db'] },
);

const workerPlugin = fp<{
  settings: WorkerSettings | false;
  siteConfig: () => SiteConfig;
  linkTokenKeys: LinkTokenKey | LinkTokenKey[];
}>(
  async (app, o) => {
    if (o.settings === false) {
      app.decorate('deliveryWorker', undefined);
      return;
    }
    const s = o.settings;
    const worker = new DeliveryWorker({
      db: app.notificationsDb,
      mailer: app.mailer,
      siteConfig: o.siteConfig,
      linkTokenKeys: o.linkTokenKeys,
      concurrency: s.poolSize ?? 5,
      logger: app.log,
      ...(s.pollIntervalMs !== undefined ? { pollIntervalMs: s.pollIntervalMs } : {}),
      ...(s.maxAttempts !== undefined ? { maxAttempts: s.maxAttempts } : {}),
      ...(s.backoff !== undefined ? { backoff: s.backoff } : {}),
      ...(s.claimTimeoutMs !== undefined ? { claimTimeoutMs: s.claimTimeoutMs } : {}),
      ...(s.breaker !== undefined ? { breaker: s.breaker } : {}),
      ...(s.workerId !== undefined ? { workerId: s.workerId } : {}),
      onAttempt: app.notificationsMetrics.onAttempt,
      onPurged: app.notificationsMetrics.onPurged,
    });
    app.decorate('deliveryWorker', worker);
    app.addHook('onReady', async () => worker.start());
    // Closed before the mailer (hooks run in reverse order of registration): sends in flight finish.
    app.addHook('onClose', async () => worker.stop());
  },
  { name: 'notifications-worker', dependencies: ['notifications-mailer'] },
);

const consumerPlugin = fp<{
  bus: Bus | undefined;
  siteConfig: () => SiteConfig;
  awaitRecipientMs: number | undefined;
}>(
  async (app, o) => {
    if (!o.bus) {
      app.decorate('consumerRunning', () => false);
      app.decorate('notificationsConsumer', undefined);
      return;
    }
    const log = app.log.child({ component: 'consumer' });
    const consumer = createNotificationsConsumer({
      bus: o.bus,
      db: app.notificationsDb,
      siteConfig: o.siteConfig,
      onQueued: () => app.deliveryWorker?.wake(),
      onStateChange: (state) => {
        app.notificationsMetrics.consumer.onStateChange(state);
        logConsumerState(log, state);
      },
      onHandled: app.notificationsMetrics.onHandled,
      onLag: app.notificationsMetrics.consumer.onLag,
      onDeadLettered: app.notificationsMetrics.consumer.onDeadLettered,
      ...(o.awaitRecipientMs !== undefined ? { awaitRecipientMs: o.awaitRecipientMs } : {}),
    });
    app.decorate('consumerRunning', () => consumer.state().phase === 'assigned');
    app.decorate('notificationsConsumer', consumer);
    let reminder: NodeJS.Timeout | undefined;
    app.addHook('onReady', async () => {
      // Not awaited: after a member was killed the group join lasts until its session times out,
      // and the service is live (and serves the delivery log) meanwhile; /readyz shows the join.
      // Failed joins are retried by the bus until stop, so this never rejects for them.
      consumer.start().catch((err) => log.error({ reason: String(err) }, 'the event consumer did not start'));
      reminder = setInterval(() => {
        const state = consumer.state();
        if (state.phase !== 'assigned' && state.phase !== 'stopped') log.warn(describeConsumerState(state));
      }, 10_000);
      reminder.unref();
    });
    app.addHook('onClose', async () => {
      clearInterval(reminder);
      await consumer.stop();
    });
  },
  { name: 'notifications-consumer', dependencies: ['notifications-worker'] },
);

const docs = {
  title: 'sitemail notifications',
  version: '0.1.0',
  description:
    'Consumes accounts and code-monitoring events, applies the verified-primary-email policy and delivers email over SMTP. Admin routes take `Authorization: token <API key>` (or `Bearer <API key>`) of a site admin. Errors are RFC 9457 problem details (application/problem+json).',
  tags: [
    { name: 'deliveries', description: 'The delivery log' },
    { name: 'suppressions', description: 'Addresses a final reply said have no mailbox' },
    { name: 'admin', description: 'Site admin tools' },
    { name: 'unsubscribe', description: 'One-click unsubscribe links in emails (public, RFC 8058)' },
    { name: 'operations', description: 'Liveness, readiness and metrics' },
  ],
};

/**
 * The notifications service as a Fastify plugin (it never listens): the service kit's edges
 * (security headers, problem+json errors, docs, health), infrastructure plugins (db, mailer,
 * worker, consumer) that release what they hold on close, the delivery log and `POST /test-email`
 * for site admins. Validation is TypeBox's own compiler, as in accounts: bodies are checked as
 * they are (unknown fields refused, nothing silently dropped), query strings and params are
 * converted first (integers only from integer text, see the service kit's validatorCompiler).
 */
export const notificationsApp: FastifyPluginAsync<NotificationsAppOptions> = fp(
  async (app: FastifyInstance, o: NotificationsAppOptions) => {
    if (
      o.awaitRecipientMs !== undefined &&
      !(Number.isFinite(o.awaitRecipientMs) && o.awaitRecipientMs >= 0)
    ) {
      throw new Error(`awaitRecipientMs must be a number of milliseconds >= 0, not ${o.awaitRecipientMs}`);
    }
    app.setValidatorCompiler(validatorCompiler);
    await app.register(httpTracingPlugin);
    await app.register(securityHeadersPlugin);
    await app.register(problemsPlugin, { wwwAuthenticate: notificationsChallenge });
    await app.register(docsPlugin, docs);
    // Before the routes: its onResponse hook times every answer (GET /metrics, notifications_* series).
    await app.register(notificationsMetricsPlugin, { db: o.db });
    const settings = o.worker === undefined ? {} : o.worker;
    await app.register(dbPlugin, { db: o.db, migrate: o.migrate ?? true });
    await app.register(mailerPlugin, {
      siteConfig: o.siteConfig,
      poolSize: (settings ? settings.poolSize : undefined) ?? 5,
    });
    await app.register(workerPlugin, { settings, siteConfig: o.siteConfig, linkTokenKeys: o.linkTokenKeys });
    await app.register(consumerPlugin, {
      bus: o.bus,
      siteConfig: o.siteConfig,
      awaitRecipientMs: o.awaitRecipientMs,
    });
    await app.register(addressEventsRelayPlugin, { db: o.db, bus: o.bus });
    await app.register(healthPlugin, { checks: readinessChecks(app, o) });

    const authenticate = apiKeyAuthenticator(o.db);
    await app.register(deliveryRoutes, {
      db: o.db,
      authenticate,
      queueState: () => app.deliveryWorker?.queueState(),
      maxAgeHours: () => o.siteConfig()['email.delivery.maxAgeHours'],
    });
    await app.register(suppressionRoutes, { db: o.db, authenticate });
    await app.register(bounceRoutes, {
      db: o.db,
      authenticate,
      onRecorded: app.notificationsMetrics.onBounce,
    });
    // Public: the one-click unsubscribe link's token is its only credential (RFC 8058).
    await app.register(unsubscribeRoutes, { db: o.db, linkTokenKeys: o.linkTokenKeys });
    // A test email the saved settings got through resumes a paused queue at once.
    await app.register(testEmailRoutes, {
      siteConfig: o.siteConfig,
      authenticate,
      mailer: resumingOnSuccess(app.mailer, () => app.deliveryWorker?.relayAnswered()),
    });
  },
  { name: 'notifications-app' },
);

/** The mailer, telling `onSuccess` of each email it got through. */
function resumingOnSuccess(mailer: Mailer, onSuccess: () => void): Mailer {
  return {
    ...mailer,
    send: async (email) => {
      const sent = await mailer.send(email);
      onSuccess();
      return sent;
    },
    close: () => mailer.close(),
  };
}

/** The consumer's state in words for /readyz and the logs, e.g. "joining group notifications (12 s)". */

function logConsumerState(log: FastifyBaseLogger, state: ConsumerState): void {
  const fields = {
    groupId: state.groupId,
    phase: state.phase,
    partitions: state.partitions,
    attempt: state.attempt,
  };
  if (state.phase === 'retrying') log.warn({ ...fields, reason: state.reason }, describeConsumerState(state));
  else log.info(fields, describeConsumerState(state));
}

/**
 * What `/readyz` checks: the database answers, the consumer joined its topics (when there is a
 * bus), and the site config reads. Each reason is safe to show: no connection string, no secret.
 */
function readinessChecks(app: FastifyInstance, o: NotificationsAppOptions): Record<string, ReadinessCheck> {
  return {
    database: async () => {
      try {
        await pingDatabase(o.db);
      } catch {
        return 'the database does not answer';
      }
    },
    ...(o.bus
      ? {
          consumer: async () => {
            const state = app.notificationsConsumer?.state();
            return state?.phase === 'assigned'
              ? true
              : state
                ? describeConsumerState(state)
                : 'no event consumer';
          },
        }
      : {}),
    siteConfig: async () => {
      try {
        const site = o.siteConfig();
        return typeof site === 'object' && site !== null ? true : 'no site config loaded';
      } catch {
        return 'the site config could not be read';
      }
    },
  };
}

export default notificationsApp;
