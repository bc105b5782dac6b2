import type { ConsumerState } from '@sitemail/bus';
import type { Database } from '@sitemail/db';
import {
  Counter,
  createMetricsRegistry,
  Gauge,
  Histogram,
  metricsPlugin,
  type Registry,
  scrapeTimeGauge,
} from '@sitemail/service-kit';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { QueueState } from './delivery/circuit-breaker.ts';
import type { Decision } from './domain/decision.ts';
import { awaitedRecipients, deliveriesByStatus } from './store/metrics.ts';

/** What an attempt's outcome tells the metrics (structurally the worker's AttemptOutcome). */
export interface AttemptFacts {
  status: string;
  startedAt: Date;
  finishedAt: Date;
  responseCode?: number;
  step?: string;
}

/**
 * The SMTP conversation's steps (smtp/types.ts SmtpStep, but `config`): a failure at one of them
 * without a reply code is a connection failure. Other steps (render, link-expired, config) end
 * before anything is sent: no reply, no send to time.
 */
const SENDING_STEPS = new Set(['connect', 'tls', 'ehlo', 'auth', 'envelope', 'data']);

/**
 * The class of the SMTP server's answer to an attempt: `2xx` accepted, `4xx`/`5xx` by its reply
 * code, `connection` when no reply came (refused, reset, timed out, TLS); undefined when the
 * attempt never reached the server.
 */
export function smtpReplyClass(o: AttemptFacts): string | undefined {
  if (o.status === 'sent') return '2xx';
  if (o.responseCode !== undefined && o.responseCode >= 200 && o.responseCode < 600) {
    return `${Math.floor(o.responseCode / 100)}xx`;
  }
  return o.step !== undefined && SENDING_STEPS.has(o.step) ? 'connection' : undefined;
}

/** Every status a delivery can be in (the deliveries_status_check of store/migrations.ts): each is shown, at 0 when none is in it. */
const DELIVERY_STATUSES = [
  'queued',
  'sending',
  'sent',
  'deferred',
  'failed',
  'suppressed',
  'awaiting-recipient',
];

export interface NotificationsMetrics {
  registry: Registry;
  /** After an event was handled (its transaction committed). */
  onHandled(eventType: string, handled: { duplicate: boolean; decisions: readonly Decision[] }): void;
  /** After each delivery attempt. */
  onAttempt(outcome: AttemptFacts): void;
  /** Each DSN report newly recorded (POST /bounces): its action and, when failed, its scope. */
  onBounce(report: { action: string; scope: string }): void;
  /** The address events relay (fleet/): events Kafka acknowledged, by type; rows set aside. */
  onAddressEventsPublished(events: readonly { type: string }[]): void;
  onAddressEventSetAside(): void;
  /** After each retention run (delivery/retention.ts): the rows it purged. */
  onPurged(purged: { deliveries: number; attempts: number; processedEvents: number }): void;
  /** The bus consumer's listeners. */
  consumer: {
    onLag(lag: { topic: string; partition: number; messages: number }): void;
    onDeadLettered(count: number): void;
    onStateChange(state: ConsumerState): void;
  };
}

/**
 * notifications' own series, in the app's registry. Deliveries by status and the awaited
 * recipients are counted in the database when scraped, so they are right across restarts and
 * instances; the counters are this process's since it started.
 */
export function createNotificationsMetrics(
  registry: Registry,
  db: Database,
  /** This instance's delivery worker's state (undefined without a worker), read at scrape. */
  queueState: () => QueueState | undefined = () => undefined,
): NotificationsMetrics {
  const lag = new Gauge({
    name: 'notifications_consumer_lag',
    help: 'Messages of each partition not handled yet (high watermark − committed offset), as of its last batch',
    labelNames: ['topic', 'partition'],
    registers: [registry],
  });
  const handled = new Counter({
    name: 'notifications_events_handled_total',
    help: 'Events handled, by type (a redelivered event is counted again; it decides nothing new)',
    labelNames: ['type'],
    registers: [registry],
  });
  const decisions = new Counter({
    name: 'notifications_decisions_total',
    help: 'Emails decided, by email kind, decision (send, suppress, await-recipient) and suppression reason (none for a send)',
    labelNames: ['kind', 'decision', 'reason'],
    registers: [registry],
  });
  const sendDuration = new Histogram({
    name: 'notifications_send_duration_seconds',
    help: 'One SMTP send attempt, handed to the mailer to its answer (or failure)',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [registry],
  });
  const replies = new Counter({
    name: 'notifications_smtp_replies_total',
    help: "SMTP servers' answers to send attempts, by class: 2xx, 4xx, 5xx, or connection (no reply)",
    labelNames: ['class'],
    registers: [registry],
  });
  const purgedRows = new Counter({
    name: 'notifications_retention_purged_total',
    help: 'Rows the retention job purged, by table: deliveries, delivery_attempts, processed_events',
    labelNames: ['table'],
    registers: [registry],
  });
  const bounces = new Counter({
    name: 'notifications_bounces_total',
    help: 'DSN reports recorded (POST /bounces; a report posted again is not counted), by action (failed, delayed, delivered, relayed, expanded) and scope of a failed one (address, message, sender, transient; none otherwise)',
    labelNames: ['action', 'scope'],
    registers: [registry],
  });
  const addressEvents = new Counter({
    name: 'notifications_address_events_published_total',
    help: 'Address events (notifications.address-events.v1) Kafka acknowledged, by type (EmailAddressUndeliverable, EmailAddressDeliverable)',
    labelNames: ['type'],
    registers: [registry],
  });
  const addressEventsSetAside = new Counter({
    name: 'notifications_address_events_set_aside_total',
    help: 'Outbox rows the address events contract cannot carry (an address with a control character), logged and not published',
    registers: [registry],
  });
  const deadLetters = new Counter({
    name: 'notifications_dead_letters_total',
    help: 'Messages sent to the dead-letter topic (malformed, or not of their topic’s producer)',
    registers: [registry],
  });
  new Gauge({
    name: 'notifications_delivery_queue_paused',
    help: "1 while this instance's delivery queue is paused, by cause: sender (the SMTP server refuses this sender as configured: authentication, TLS, relay denied) or unreachable (it does not answer); 0 otherwise",
    labelNames: ['cause'],
    registers: [registry],
    collect() {
      const s = queueState();
      for (const cause of ['sender', 'unreachable'] as const)
        this.set({ cause }, s?.state === 'paused' && s.cause === cause ? 1 : 0);
    },
  });
  scrapeTimeGauge({
    registry,
    name: 'notifications_deliveries',
    help: 'Deliveries by status, counted in the database',
    labelNames: ['status'],
    read: async () =>
      (await deliveriesByStatus(db, DELIVERY_STATUSES)).map(({ status, count }) => ({
        labels: { status },
        value: count,
      })),
    // It counts every delivery ever made (sent ones included): allow it more than the default.
    timeoutMs: 2000,
  });
  scrapeTimeGauge({
    registry,
    name: 'notifications_awaiting_recipients',
    help: 'Recipients whose emails wait for their events to reach notifications',
    read: () => awaitedRecipients(db),
  });

  return {
    registry,
    onHandled(eventType, h) {
      handled.inc({ type: eventType });
      for (const d of h.decisions) {
        decisions.inc({ kind: d.email, decision: d.kind, reason: d.kind === 'send' ? 'none' : d.reason });
      }
    },
    onAttempt(o) {
      const replyClass = smtpReplyClass(o);
      if (replyClass === undefined) return;
      replies.inc({ class: replyClass });
      sendDuration.observe(Math.max(0, o.finishedAt.getTime() - o.startedAt.getTime()) / 1000);
    },
    onBounce: ({ action, scope }) => bounces.inc({ action, scope }),
    onAddressEventsPublished(events) {
      for (const e of events) addressEvents.inc({ type: e.type });
    },
    onAddressEventSetAside: () => addressEventsSetAside.inc(),
    onPurged(p) {
      purgedRows.inc({ table: 'deliveries' }, p.deliveries);
      purgedRows.inc({ table: 'delivery_attempts' }, p.attempts);
      purgedRows.inc({ table: 'processed_events' }, p.processedEvents);
    },
    consumer: {
      onLag: ({ topic, partition, messages }) => lag.set({ topic, partition: String(partition) }, messages),
      onDeadLettered: (count) => deadLetters.inc(count),
      // Partitions move on a rebalance: a member that is not assigned reports no partition's lag.
      onStateChange: (state) => {
        if (state.phase !== 'assigned') lag.reset();
      },
    },
  };
}

declare module 'fastify' {
  interface FastifyInstance {
    notificationsMetrics: NotificationsMetrics;
  }
}

/** `GET /metrics` with notifications' series, and `app.notificationsMetrics` for the consumer and the worker. */
export const notificationsMetricsPlugin = fp(
  async (app: FastifyInstance, opts: { db: Database }) => {
    const registry = createMetricsRegistry();
    // The worker is registered after this plugin; its state is read at scrape time.
    app.decorate(
      'notificationsMetrics',
      createNotificationsMetrics(registry, opts.db, () => app.deliveryWorker?.queueState()),
    );
    await app.register(metricsPlugin, { registry });
  },
  { name: 'notifications-metrics' },
);
