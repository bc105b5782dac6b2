/**
 * Shared set-ups of the delivery integration tests on a real SMTP server (testkit):
 * - `startDeliveryApp`: the whole service (notificationsApp with its worker) on a migrated
 *   database, a site admin whose API key is `adminKey`, and `handle`/`settled` to queue emails
 *   and wait for the worker to finish them;
 * - `startDeliveryWorker`: a bare DeliveryWorker and its mailer for one site config, stopped by
 *   the `Cleanups` it is given.
 */
import { apiKeySecretSha256 } from '@sitemail/contracts';
import type { SiteConfig } from '@sitemail/site-config';
import {
  type SmtpServerOptions,
  startSmtpServer,
  type TestDatabase,
  type TestSmtpServer,
} from '@sitemail/testkit';
import Fastify, { type FastifyInstance } from 'fastify';
import { notificationsApp } from '../src/app.ts';
import { type HandledEvent, handleEvent } from '../src/application/handle-event.ts';
import { DeliveryWorker, type DeliveryWorkerOptions } from '../src/delivery/worker.ts';
import { createMailer, type MailerOptions } from '../src/smtp/index.ts';
import { Stream, testLinkKey } from './events.ts';
import { eventually, notificationsDb, siteFor } from './harness.ts';

/** Things to close at the end of a file, last opened first; errors are ignored. */
export class Cleanups {
  private readonly fns: (() => Promise<unknown>)[] = [];
  push(fn: () => Promise<unknown>): void {
    this.fns.push(fn);
  }
  readonly run = async (): Promise<void> => {
    for (const fn of this.fns.splice(0).reverse()) await fn().catch(() => {});
  };
}

export interface SettledDelivery {
  status: string;
  suppression_reason: string | null;
}

/** Waits until the worker is done with a delivery (sent or failed), or at once when suppressed. */
export function settledIn(db: TestDatabase, id: string): Promise<SettledDelivery> {
  return eventually(async () => {
    const { rows } = await db.query<SettledDelivery>(
      'SELECT status, suppression_reason FROM deliveries WHERE id = $1',
      [id],
    );
    const r = rows[0]!;
    return ['sent', 'failed', 'suppressed'].includes(r.status) ? r : undefined;
  });
}

export interface DeliveryApp {
  db: TestDatabase;
  smtp: TestSmtpServer;
  app: FastifyInstance;
  /** The site admin (root@example.com), whose API key is `adminKey`. */
  admin: Stream;
  /** Handles an event with the app's site config, now. */
  handle(event: Parameters<typeof handleEvent>[1]): Promise<HandledEvent>;
  settled(id: string): Promise<SettledDelivery>;
  close(): Promise<void>;
}

/**
 * notificationsApp on a new database `label` and a testkit SMTP server (`smtp` its options),
 * its worker polling every 50 ms with one connection; a site admin holds `adminKey`, and the
 * email telling them of that key has been sent.
 */
export async function startDeliveryApp(
  label: string,
  o: { adminKey: string; smtp?: SmtpServerOptions },
): Promise<DeliveryApp> {
  const db = await notificationsDb(label);
  const smtp = await startSmtpServer(o.smtp);
  const app = Fastify({ logger: false, ajv: { customOptions: { removeAdditional: false } } });
  await app.register(notificationsApp, {
    db,
    siteConfig: () => siteFor(smtp),
    linkTokenKeys: testLinkKey,
    worker: { pollIntervalMs: 50, poolSize: 1, backoff: { baseMs: 50 } },
  });
  await app.ready();
  const handle = (e: Parameters<typeof handleEvent>[1]) => handleEvent(db, e, siteFor(smtp), new Date());
  const settled = (id: string) => settledIn(db, id);
  const admin = new Stream();
  await handle(
    admin.created({ email: 'root@example.com', verified: true, siteAdmin: true, username: 'root' }),
  );
  await settled((await handle(admin.apiKeyCreated('admin', apiKeySecretSha256(o.adminKey)))).deliveryIds[0]!);
  return {
    db,
    smtp,
    app,
    admin,
    handle,
    settled,
    close: async () => {
      await app.close();
      await smtp.close();
      await db.close();
    },
  };
}

/**
 * A DeliveryWorker (concurrency 2, polling every 50 ms) and its mailer for `site`, not started;
 * `cleanups` stops both.
 */
export function startDeliveryWorker(
  cleanups: Cleanups,
  db: TestDatabase,
  site: SiteConfig,
  o: { mailer?: MailerOptions; worker?: Partial<DeliveryWorkerOptions> } = {},
): DeliveryWorker {
  const mailer = createMailer(() => site, o.mailer);
  const worker = new DeliveryWorker({
    db,
    mailer,
    siteConfig: () => site,
    linkTokenKeys: testLinkKey,
    concurrency: 2,
    pollIntervalMs: 50,
    ...o.worker,
  });
  cleanups.push(async () => {
    await worker.stop();
    await mailer.close();
  });
  return worker;
}
