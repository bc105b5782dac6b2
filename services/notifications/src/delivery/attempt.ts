import type { LinkTokenKey } from '@sitemail/contracts';
import type { SiteConfig } from '@sitemail/site-config';
import { RenderError, renderEmail } from '../domain/templates/render.ts';
import { issueUnsubscribeToken, isUnsubscribable, unsubscribeURL } from '../domain/unsubscribe-token.ts';
import { classifyReply, type ReplyClass } from '../smtp/classify.ts';
import { type Mailer, SmtpSendError, type SmtpStep } from '../smtp/types.ts';
import type { AttemptOutcome, ClaimedDelivery } from '../store/queue.ts';
import {
  type BackoffOptions,
  DEFAULT_MAX_AGE_HOURS,
  type GiveUp,
  giveUpOf,
  retryOrGiveUp,
} from './backoff.ts';

export interface AttemptContext {
  mailer: Mailer;
  siteConfig: () => SiteConfig;
  linkTokenKeys: LinkTokenKey | LinkTokenKey[];
  sendTimeoutMs: number;
  /** A safety cap only: deliveries are retried by time (see `giveUpOf`). */
  maxAttempts: number;
  backoff: BackoffOptions;
  clock: () => Date;
  random: () => number;
  logger: { warn(obj: object, msg?: string): void };
}

/** A failed attempt's outcome with the classification of its reply, for the worker's breaker. */
export type FailedAttempt = Exclude<AttemptOutcome, { status: 'sent' }> & { reply?: ReplyClass };

/** The link an email carries, if any: its expiry ends the delivery's retries. */
const linkExpiryOf = (c: ClaimedDelivery): string | undefined =>
  'link' in c.message ? c.message.link.expiresAt : undefined;

/**
 * The one-click unsubscribe URL of an email its user may opt out of, with a token issued now
 * under the current link-token key (the first; older ones only verify). None for other kinds, or
 * for an email with no user (an invitation to someone new).
 */
function unsubscribeURLOf(
  c: ClaimedDelivery,
  site: SiteConfig,
  keys: LinkTokenKey | LinkTokenKey[],
  now: Date,
): string | undefined {
  if (!isUnsubscribable(c.message.kind) || c.userId === null) return undefined;
  const key = Array.isArray(keys) ? keys[0] : keys;
  if (!key) return undefined;
  const token = issueUnsubscribeToken({ userId: c.userId, kind: c.message.kind, issuedAt: now }, key);
  return unsubscribeURL(site.externalURL, token);
}

/** When this delivery stops being retried: its maximum age (site config) or its link's expiry. */
export function giveUpOfDelivery(c: ClaimedDelivery, site: SiteConfig): GiveUp {
  return giveUpOf(c.createdAt, linkExpiryOf(c), site['email.delivery.maxAgeHours'] ?? DEFAULT_MAX_AGE_HOURS);
}

/**
 * One attempt at a claimed delivery: rendered at send time (link tokens are opened only now),
 * handed to the mailer, and how it ended. An email whose link has expired is failed
 * `link-expired` without sending; a token that does not open fails it at once. A send failure is
 * classified (smtp/classify.ts): a throttling reply is `throttled` (the worker slows down; no
 * attempt spent); a failure that is the sender's is `paused` (the worker pauses the queue; not
 * spent either); a final reply fails it; anything else is retried with backoff until its give-up
 * time (`retryOrGiveUp`).
 */
export async function attemptDelivery(
  c: ClaimedDelivery,
  ctx: AttemptContext,
): Promise<AttemptOutcome | FailedAttempt> {
  const startedAt = ctx.clock();
  const giveUp = giveUpOfDelivery(c, ctx.siteConfig());
  const link = linkExpiryOf(c);
  if (link !== undefined && startedAt >= new Date(link)) {
    return {
      delivery: c,
      status: 'failed',
      startedAt,
      finishedAt: startedAt,
      error: `link-expired: the link in this email expired at ${new Date(link).toISOString()} before it could be sent; a dead link is not sent${c.attempt > 1 ? ' (earlier tries failed, see the attempts)' : ''}`,
      step: 'link-expired',
      failureReason: 'link-expired',
      giveUpAt: giveUp.at,
    };
  }
  let rendered: ReturnType<typeof renderEmail>;
  try {
    const site = ctx.siteConfig();
    const unsubscribe = unsubscribeURLOf(c, site, ctx.linkTokenKeys, startedAt);
    rendered = renderEmail(c.message, {
      site,
      linkTokenKeys: ctx.linkTokenKeys,
      ...(unsubscribe ? { unsubscribeURL: unsubscribe } : {}),
    });
  } catch (err) {
    if (!(err instanceof RenderError)) throw err;
    return {
      delivery: c,
      status: 'failed',
      startedAt,
      finishedAt: ctx.clock(),
      error: err.message,
      step: 'render',
      failureReason: 'render',
      giveUpAt: giveUp.at,
    };
  }
  try {
    const sent = await withTimeout(
      ctx.mailer.send({
        to: c.to,
        subject: rendered.subject,
        text: rendered.text,
        html: rendered.html,
        messageId: c.messageId,
        headers: { 'X-Sitemail-Delivery': c.id, ...rendered.headers },
        envelopeId: c.id,
      }),
      ctx.sendTimeoutMs,
    );
    return {
      delivery: c,
      status: 'sent',
      startedAt,
      finishedAt: ctx.clock(),
      response: sent.response,
      giveUpAt: giveUp.at,
    };
  } catch (err) {
    const failure = describeSendError(err);
    const reply = classifyReply({
      code: failure.responseCode,
      reply: failure.reply,
      step: failure.step,
      refusedByMailer: failure.refusedByMailer,
    });
    const finishedAt = ctx.clock();
    const common = {
      delivery: c,
      startedAt,
      finishedAt,
      error: failure.message,
      step: failure.step,
      replyScope: reply.scope,
      reply,
      giveUpAt: giveUp.at,
      ...(failure.responseCode !== undefined ? { responseCode: failure.responseCode } : {}),
    };
    if (reply.throttle) {
      ctx.logger.warn(
        { delivery: c.id, attempt: c.attempt, step: failure.step, err: failure.message },
        'delivery throttled by the SMTP server; slowing down',
      );
      return { ...common, status: 'throttled' };
    }
    if (reply.pause) {
      // Not this delivery's fault: back in the queue, due at once, for when the queue resumes.
      return { ...common, status: 'paused', nextAttemptAt: finishedAt };
    }
    if (!reply.retry) {
      ctx.logger.warn(
        { delivery: c.id, attempt: c.attempt, step: failure.step, scope: reply.scope, err: failure.message },
        'delivery failed',
      );
      return { ...common, status: 'failed', failureReason: 'rejected' };
    }
    const next = retryOrGiveUp({
      finishedAt,
      attemptsUsed: c.attemptsUsed,
      giveUp,
      backoff: ctx.backoff,
      random: ctx.random(),
    });
    if ('gaveUp' in next || c.attemptsUsed >= ctx.maxAttempts) {
      const why =
        'gaveUp' in next
          ? next.gaveUp === 'link-expired'
            ? `link-expired: the link expires at ${giveUp.at.toISOString()}, giving up`
            : `max-age: retried until ${giveUp.at.toISOString()} (email.delivery.maxAgeHours), giving up`
          : `max-attempts: ${c.attemptsUsed} attempts (the safety cap), giving up`;
      ctx.logger.warn(
        { delivery: c.id, attempt: c.attempt, step: failure.step, err: failure.message },
        'delivery failed: giving up',
      );
      return {
        ...common,
        status: 'failed',
        error: `${why}; last: ${failure.message}`,
        failureReason: 'gaveUp' in next ? next.gaveUp : 'max-attempts',
      };
    }
    ctx.logger.warn(
      { delivery: c.id, attempt: c.attempt, step: failure.step, err: failure.message },
      'delivery deferred',
    );
    return { ...common, status: 'deferred', nextAttemptAt: next.retryAt };
  }
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new SmtpSendError(`mail: no answer within ${ms} ms`, 'connect', false)),
      ms,
    );
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/**
 * A failed send's message, step, reply code and reply text, for `classifyReply`. A config error
 * means the config changed after the email was queued (the policy suppresses emails when it cannot
 * send): it classifies as the sender's, so the queue pauses until the config is fixed.
 */
function describeSendError(err: unknown): {
  message: string;
  step: SmtpStep;
  responseCode?: number;
  reply?: string;
  refusedByMailer?: boolean;
} {
  if (err instanceof SmtpSendError) {
    return {
      message: err.message,
      step: err.step,
      refusedByMailer: err.permanent && err.responseCode === undefined,
      ...(err.responseCode !== undefined ? { responseCode: err.responseCode } : {}),
      ...(err.smtpResponse !== undefined ? { reply: err.smtpResponse } : {}),
    };
  }
  // Anything else is unexpected; treat it as transient rather than lose the email.
  return { message: `mail: ${(err as Error)?.message ?? String(err)}`, step: 'connect' };
}
