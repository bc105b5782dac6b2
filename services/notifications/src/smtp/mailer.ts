import type { Socket } from 'node:net';
import os from 'node:os';
import { type SiteConfig, type SmtpConfig, senderName } from '@sitemail/site-config';
import nodemailer from 'nodemailer';
import {
  type ConnectionPlan,
  connectionPlan,
  DEFAULT_SMTP_TIMEOUTS,
  type SmtpTimeouts,
  smtpConfigKey,
} from './connection-rules.ts';
import { conversationTracker } from './conversation.ts';
import { connectChecked, type DestinationRule, type Lookup } from './destination.ts';
import {
  configError,
  credentialSecrets,
  type ErrorContext,
  NO_FROM_ADDRESS,
  NO_SMTP_CONFIGURED,
  toSmtpSendError,
} from './errors.ts';
import { createTokenSource, type TokenSource, tokenUrlProblem } from './oauth2.ts';
import { guardedAuthHandlers, xoauth2 } from './sasl.ts';
import { tracedMailer } from './send-span.ts';
import { type Mailer, type OutgoingEmail, type SentEmail, SmtpSendError } from './types.ts';

/** The part of a pino/Fastify logger the mailer uses. */
export interface MailerLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface MailerOptions {
  logger?: MailerLogger;
  /** Connections kept open to the server (nodemailer `maxConnections`). Default 5. */
  poolSize?: number;
  timeouts?: Partial<SmtpTimeouts>;
  /** Resolves the SMTP host (default: the system resolver, as `dns.lookup`). */
  lookup?: Lookup;
  /**
   * Ms a pool's connections are reused before the next send opens new ones; default 5 min, as Postfix's
   * `smtp_connection_reuse_time_limit`, not 100 messages as nodemailer: a new connection's greeting
   * delay, TLS and AUTH made the whole p99 of the send at a low rate (smtp/README.md).
   */
  connectionReuseMs?: number;
  /** Messages per connection before nodemailer opens a new one. Default: no limit (see `connectionReuseMs`). */
  maxMessagesPerConnection?: number;
}

export const DEFAULT_CONNECTION_REUSE_MS = 300_000;

/** The optional site-config key of the destination rule (`destination.ts`), not in SiteConfig's type. */
export const DENY_PRIVATE_NETWORKS = 'email.smtp.denyPrivateNetworks';

export function destinationRule(site: SiteConfig): DestinationRule {
  return {
    denyPrivateNetworks: (site as unknown as Record<string, unknown>)[DENY_PRIVATE_NETWORKS] === true,
  };
}

/** nodemailer's `dkim` option from `email.dkim` (the key was checked as RSA when the config was read). */
function dkimOf(site: SiteConfig): {
  dkim?: { domainName: string; keySelector: string; privateKey: string };
} {
  const dkim = site['email.dkim'];
  if (!dkim) return {};
  return {
    dkim: { domainName: dkim.domainName, keySelector: dkim.keySelector, privateKey: dkim.privateKey },
  };
}

type Transport = ReturnType<typeof nodemailer.createTransport>;

interface Pool {
  key: string;
  transport: Transport;
  plan: ConnectionPlan;
  errorContext: ErrorContext;
  inFlight: number;
  retired: boolean;
  /** performance.now() when the pool was made: it is replaced once older than `connectionReuseMs`. */
  createdAt: number;
  tokens: TokenSource | undefined;
}

/** The mechanisms nodemailer recognises in an EHLO reply, any of which it may pick. */
const NODEMAILER_MECHANISMS = ['PLAIN', 'LOGIN', 'CRAM-MD5', 'XOAUTH2'] as const;

const machine = () => ({ hostname: os.hostname(), interfaces: os.networkInterfaces() });

/**
 * Sends with the SMTP settings of the site config in force at each send, over pooled connections.
 * A changed config (host, port, auth, credentials, domain, noVerifyTLS) builds a new pool; the old
 * one is closed once its sends in flight are done, so a config change needs no restart.
 */
export function createMailer(config: () => SiteConfig, opts: MailerOptions = {}): Mailer {
  const poolSize = opts.poolSize ?? 5;
  const reuseMs = opts.connectionReuseMs ?? DEFAULT_CONNECTION_REUSE_MS;
  if (!(reuseMs > 0))
    throw new RangeError(`connectionReuseMs: expected a positive number of ms, got ${reuseMs}`);
  const maxMessages = opts.maxMessagesPerConnection ?? Number.POSITIVE_INFINITY;
  if (!(maxMessages >= 1))
    throw new RangeError(`maxMessagesPerConnection: expected at least 1, got ${maxMessages}`);
  const timeouts: SmtpTimeouts = { ...DEFAULT_SMTP_TIMEOUTS, ...opts.timeouts };
  const warnedNoVerify = new Set<string>();
  let current: Pool | undefined;
  const retired = new Set<Pool>();
  let closed = false;

  const retire = (pool: Pool) => {
    pool.retired = true;
    retired.add(pool);
    closeIfDone(pool);
  };
  const closeIfDone = (pool: Pool) => {
    if (pool.retired && pool.inFlight === 0) {
      retired.delete(pool);
      pool.transport.close();
    }
  };

  const poolFor = (smtp: SmtpConfig, rule: DestinationRule): Pool => {
    // hashed on every send (a couple of microseconds) rather than trusting object identity, so a
    // config object changed in place is noticed too
    const key = `${smtpConfigKey(smtp)}:${rule.denyPrivateNetworks}`;
    const now = performance.now();
    if (current?.key === key && now - current.createdAt < reuseMs) return current;
    const plan = connectionPlan(smtp, machine(), timeouts);
    // one token source per settings: the pool's connections, and the pool that replaces an aged
    // one, share the cached token and any request in flight
    const tokens: TokenSource | undefined =
      plan.authMethod === 'XOAUTH2' && smtp.oauth2
        ? current?.key === key && current.tokens
          ? current.tokens
          : createTokenSource(smtp.oauth2, smtp.username ?? '', { timeoutMs: timeouts.connectionMs })
        : undefined;
    if (smtp.noVerifyTLS && !warnedNoVerify.has(key)) {
      warnedNoVerify.add(key);
      opts.logger?.warn(
        { host: smtp.host, port: smtp.port },
        'email.smtp.noVerifyTLS is true: the SMTP server certificate is NOT verified; anyone on the network path can impersonate the mail server and read the credentials and emails',
      );
    }
    const transport = nodemailer.createTransport({
      pool: true,
      maxConnections: poolSize,
      maxMessages,
      // Retries belong to the delivery queue, which records each attempt. nodemailer requeues only
      // a message of which not a byte was sent, over a reused connection the server had dropped
      // (typically while idle): one such retry on a fresh connection is not a real attempt.
      maxRequeues: 1,
      host: plan.host,
      port: plan.port,
      secure: plan.secure,
      requireTLS: plan.requireTLS,
      name: plan.name,
      tls: plan.tls,
      connectionTimeout: plan.connectionTimeout,
      greetingTimeout: plan.greetingTimeout,
      socketTimeout: plan.socketTimeout,
      dnsTimeout: plan.dnsTimeout,
      // every connection is opened by the destination rule: resolved, checked, then connected to
      // the checked address; nodemailer still runs TLS (465 or STARTTLS) on it with the host
      // name as the server name it verifies
      getSocket: (_options: unknown, done: (err: Error | null, socket?: { connection: Socket }) => void) => {
        connectChecked(plan.host, plan.port, rule, timeouts.connectionMs, opts.lookup).then(
          (connection) => done(null, { connection }),
          (err: Error) => done(err),
        );
      },
      ...(plan.authMethod
        ? {
            auth: { user: smtp.username ?? '', pass: smtp.password ?? '' },
            authMethod: plan.authMethod,
            // run the guarded handlers even when the server advertises no AUTH at all
            forceAuth: true,
            // nodemailer ignores authMethod XOAUTH2 without its own token generator and runs the
            // first mechanism the server lists instead (Microsoft 365 lists LOGIN first): under
            // XOAUTH2 every mechanism it knows runs the XOAUTH2 handler, which insists on XOAUTH2
            customAuth: tokens
              ? Object.fromEntries(NODEMAILER_MECHANISMS.map((m) => [m, xoauth2(tokens)]))
              : { [plan.authMethod]: guardedAuthHandlers[plan.authMethod as 'PLAIN'] },
          }
        : {}),
      logger: conversationTracker(),
      transactionLog: true,
    });
    const pool: Pool = {
      key,
      transport,
      plan,
      inFlight: 0,
      retired: false,
      createdAt: now,
      tokens,
      errorContext: {
        host: smtp.host,
        port: smtp.port,
        credentialsNeedTls: plan.requireTLS,
        timeouts,
        // a getter: the tokens to hide are those issued so far
        get secrets() {
          return [...credentialSecrets(smtp.username, smtp.password), ...(tokens?.secrets() ?? [])];
        },
      },
    };
    if (current) {
      // an aged pool of the same settings is routine: only a change of settings is worth a line
      if (current.key !== key)
        opts.logger?.info({ host: smtp.host, port: smtp.port }, 'SMTP settings changed: new connection pool');
      retire(current);
    }
    current = pool;
    return pool;
  };

  /** The pool for the config in force, after the checks that need no connection. */
  const ready = (): { pool: Pool; site: SiteConfig; address: string } => {
    // transient: a send racing the service's shutdown is retried by the next instance
    if (closed)
      throw new SmtpSendError('mail: the mailer is closed (service shutting down)', 'connect', false);
    const site = config();
    const smtp = site['email.smtp'];
    if (!smtp) throw configError(NO_SMTP_CONFIGURED);
    const address = site['email.address'];
    if (!address) throw configError(NO_FROM_ADDRESS);
    if (smtp.authentication === 'XOAUTH2') {
      if (!smtp.username || !smtp.oauth2) {
        throw configError(
          'email.smtp.username and email.smtp.oauth2 are required when email.smtp.authentication is "XOAUTH2"',
        );
      }
      const problem = tokenUrlProblem(smtp.oauth2.tokenURL);
      if (problem) throw configError(problem);
    } else if (smtp.authentication !== 'none' && (!smtp.username || !smtp.password)) {
      throw configError(
        `email.smtp.username and email.smtp.password are required when email.smtp.authentication is "${smtp.authentication}"`,
      );
    }
    return { pool: poolFor(smtp, destinationRule(site)), site, address };
  };

  const mailer: Mailer = {
    async send(email: OutgoingEmail): Promise<SentEmail> {
      const { pool, site, address } = ready();
      pool.inFlight++;
      try {
        const info = await pool.transport.sendMail({
          from: { name: senderName(site), address },
          to: email.to,
          subject: email.subject,
          text: email.text,
          html: email.html,
          // RFC 3834 §5: every email this product sends is generated by it, test emails included;
          // auto-responders (vacation replies) then do not answer it.
          headers: { 'Auto-Submitted': 'auto-generated', ...email.headers },
          messageId: email.messageId,
          // per message rather than per transport: read from the config in force at each send, so
          // a new key or selector applies at once without a new pool (nodemailer signs every
          // header it lists by default, List-Unsubscribe and List-Unsubscribe-Post included)
          ...dkimOf(site),
          // RFC 3461: a bounce that comes later names the delivery (ENVID) and returns the headers;
          // nodemailer sends these only to a server that offers DSN in EHLO.
          ...(email.envelopeId
            ? { dsn: { id: email.envelopeId, return: 'headers', notify: ['failure', 'delay'] } }
            : {}),
        });
        return { messageId: info.messageId, response: info.response };
      } catch (err) {
        throw toSmtpSendError(err, pool.errorContext);
      } finally {
        pool.inFlight--;
        closeIfDone(pool);
      }
    },
    async verify(): Promise<void> {
      const { pool } = ready();
      pool.inFlight++;
      try {
        await pool.transport.verify();
      } catch (err) {
        throw toSmtpSendError(err, pool.errorContext);
      } finally {
        pool.inFlight--;
        closeIfDone(pool);
      }
    },
    async close() {
      closed = true;
      if (current) retire(current);
      current = undefined;
      // pools with sends in flight close when those finish (closeIfDone); nodemailer's close lets
      // a delivery in progress finish first
      for (const pool of [...retired]) if (pool.inFlight === 0) closeIfDone(pool);
    },
  };
  // Each send in a span of its own, the email given the trace id header (send-span.ts); verify
  // (the paused queue's probe) is carried over as it is.
  return Object.assign(tracedMailer(mailer), { verify: mailer.verify });
}
