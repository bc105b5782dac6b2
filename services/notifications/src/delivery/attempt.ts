import type { LinkTokenKey } from '@sitemail/contracts';
import type { SiteConfig } from '@sitemail/site-config';
import { RenderError, renderEmail } from '../domain/templates/render.ts';
import { isThrottlingReply } from '../smtp/errors.ts';
import { type Mailer, SmtpSendError } from '../smtp/types.ts';
import type { AttemptOutcome, ClaimedDelivery } from '../store/queue.ts';
import { type BackoffOptions, retryDelayMs } from './backoff.ts';

export interface AttemptContext {
  mailer: Mailer;
  siteConfig: () => SiteConfig;
  linkTokenKeys: LinkTokenKey | LinkTokenKey[];
  sendTimeoutMs: number;
  maxAttempts: number;
  backoff: BackoffOptions;
  clock: () => Date;
  random: () => number;
  logger: { warn(obj: object, msg?: string): void };
}

/**
 * One attempt at a claimed delivery: rendered at send time (link tokens are opened only now),
 * handed to the mailer, and how it ended. A token that does not open fails it at once; a send
 * failure is retried with backoff unless it is permanent or the attempts are used up. A throttling
 * reply is `throttled`: the worker slows down and sets when it comes back; no attempt is spent.
 */
export async function attemptDelivery(c: ClaimedDelivery, ctx: AttemptContext): Promise<AttemptOutcome> {
  const startedAt = ctx.clock();
  let rendered: ReturnType<typeof renderEmail>;
  try {
    rendered = renderEmail(c.message, { site: ctx.siteConfig(), linkTokenKeys: ctx.linkTokenKeys });
  } catch (err) {
    if (!(err instanceof RenderError)) throw err;
    return {
      delivery: c,
      status: 'failed',
      startedAt,
      finishedAt: ctx.clock(),
      error: err.message,
      step: 'render',
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
        headers: { 'X-Sitemail-Delivery': c.id },
      }),
      ctx.sendTimeoutMs,
    );
    return { delivery: c, status: 'sent', startedAt, finishedAt: ctx.clock(), response: sent.response };
  } catch (err) {
    const failure = classifySendError(err);
    const finishedAt = ctx.clock();
    if (failure.throttled) {
      ctx.logger.warn(
        { delivery: c.id, attempt: c.attempt, step: failure.step, err: failure.message },
        'delivery throttled by the SMTP server; slowing down',
      );
      return {
        delivery: c,
        status: 'throttled',
        startedAt,
        finishedAt,
        error: failure.message,
        step: failure.step,
        ...(failure.responseCode !== undefined ? { responseCode: failure.responseCode } : {}),
      };
    }
    const final = failure.permanent || c.attemptsUsed >= ctx.maxAttempts;
    ctx.logger.warn(
      { delivery: c.id, attempt: c.attempt, step: failure.step, final, err: failure.message },
      final ? 'delivery failed' : 'delivery deferred',
    );
    return {
      delivery: c,
      status: final ? 'failed' : 'deferred',
      startedAt,
      finishedAt,
      nextAttemptAt: new Date(finishedAt.getTime() + retryDelayMs(c.attemptsUsed, ctx.backoff, ctx.random())),
      error: failure.message,
      step: failure.step,
      ...(failure.responseCode !== undefined ? { responseCode: failure.responseCode } : {}),
    };
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

/** How a failed send counts for the queue: its message and step, and whether retrying may help. */
function classifySendError(err: unknown): {
  message: string;
  step: string;
  permanent: boolean;
  throttled: boolean;
  responseCode?: number;
} {
  if (err instanceof SmtpSendError) {
    return {
      throttled: !err.permanent && isThrottlingReply(err.responseCode, err.smtpResponse ?? err.message),
      message: err.message,
      step: err.step,
      // The policy suppresses emails when the config cannot send; a config error here means it
      // changed after the email was queued. Retrying gives the admin the backoff window to fix it.
      permanent: err.permanent && err.step !== 'config',
      ...(err.responseCode !== undefined ? { responseCode: err.responseCode } : {}),
    };
  }
  // Anything else is unexpected; treat it as transient rather than lose the email.
  return {
    message: `mail: ${(err as Error)?.message ?? String(err)}`,
    step: 'connect',
    permanent: false,
    throttled: false,
  };
}
