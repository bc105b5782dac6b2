import { type BusLogger, stderrLogger } from './log.ts';
import type { BatchErrorContext, BusMessage, ConsumerOptions, DecodedMessage } from './types.ts';
import { MalformedMessageError } from './types.ts';

export const DEFAULT_MAX_BATCH_SIZE = 500;
const DEFAULT_BACKOFF = { initialMs: 250, maxMs: 30_000 };

/** Doubling backoff for the `attempt`-th failure (1-based), capped. */
export function backoffMs(attempt: number, backoff: { initialMs?: number; maxMs?: number } = {}): number {
  const initial = backoff.initialMs ?? DEFAULT_BACKOFF.initialMs;
  const max = backoff.maxMs ?? DEFAULT_BACKOFF.maxMs;
  return Math.min(max, initial * 2 ** Math.min(attempt - 1, 30));
}

// Checked by name too: a second copy of this package in node_modules would make instanceof lie.
const isMalformed = (e: unknown): e is MalformedMessageError =>
  e instanceof MalformedMessageError || (e instanceof Error && e.name === 'MalformedMessageError');

/** Runs a listener of the consumer's options; its bug must not stop the consumer. */
export function notify(listener: () => void): void {
  try {
    listener();
  } catch {
    // ignored: a metrics or logging listener
  }
}

export interface DeadLetter {
  message: BusMessage;
  error: MalformedMessageError;
}

/** Splits into what the handler gets and what goes to the dead-letter topic; any other decode error is thrown. */
export function decodeBatch<T>(
  messages: BusMessage[],
  decode: (m: BusMessage) => T,
): { decoded: DecodedMessage<T>[]; deadLetters: DeadLetter[] } {
  const decoded: DecodedMessage<T>[] = [];
  const deadLetters: DeadLetter[] = [];
  for (const message of messages) {
    try {
      decoded.push({ message, value: decode(message) });
    } catch (e) {
      if (!isMalformed(e)) throw e;
      deadLetters.push({ message, error: e });
    }
  }
  return { decoded, deadLetters };
}

export function chunks<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** A consumer's default `onError`: one warning naming group, topic, partition and offsets. */
export const batchErrorReporter =
  (logger: BusLogger) =>
  (error: unknown, c: BatchErrorContext): void => {
    // The error's message only: a stack or a payload could carry what a decode saw.
    const why = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    logger.warn(
      { ...c, reason: why },
      `bus: group ${c.groupId} ${c.topic}[${c.partition}] offsets ${c.firstOffset}..${c.lastOffset}: ` +
        `attempt ${c.attempt} failed (${why}); redelivering in ${c.retryInMs} ms`,
    );
  };

export const defaultOnError = batchErrorReporter(stderrLogger);

/** Resolves after `ms`, or early when `signal` aborts; `keepAlive` runs about every second meanwhile. */
export async function pause(ms: number, signal: AbortSignal, keepAlive?: () => Promise<void>): Promise<void> {
  let left = ms;
  while (left > 0 && !signal.aborted) {
    const step = Math.min(left, 1000);
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, step);
      signal.addEventListener('abort', done, { once: true });
    });
    left -= step;
    if (keepAlive && !signal.aborted) await keepAlive().catch(() => {});
  }
}

export interface BatchRun<T> {
  options: ConsumerOptions<T>;
  topic: string;
  partition: number;
  /** Non-empty, in offset order. */
  messages: BusMessage[];
  sendDeadLetters: (letters: DeadLetter[]) => Promise<void>;
  /** Aborted when the consumer stops: no further attempt starts, the batch stays uncommitted. */
  signal: AbortSignal;
  keepAlive?: () => Promise<void>;
}

/**
 * Runs one batch to completion: malformed messages to the dead-letter topic (once), the rest to the
 * handler, retrying with backoff until it succeeds. 'done' means the caller may commit past the
 * batch; 'stopped' means the consumer is stopping and the batch must stay uncommitted.
 */
export async function processBatch<T>(run: BatchRun<T>): Promise<'done' | 'stopped'> {
  const { options, messages, signal } = run;
  let split: ReturnType<typeof decodeBatch<T>> | undefined;
  let deadLettersSent = false;
  for (let attempt = 1; ; attempt++) {
    if (signal.aborted) return 'stopped';
    try {
      split ??= decodeBatch(messages, options.decode);
      if (!deadLettersSent && split.deadLetters.length > 0) {
        await run.sendDeadLetters(split.deadLetters);
        notify(() => options.onDeadLettered?.(split!.deadLetters.length, run.topic));
      }
      // A retry after a handler failure must not dead-letter the same messages twice.
      deadLettersSent = true;
      if (split.decoded.length > 0) await options.handleBatch(split.decoded);
      return 'done';
    } catch (error) {
      const retryInMs = backoffMs(attempt, options.retryBackoff);
      (options.onError ?? defaultOnError)(error, {
        groupId: options.groupId,
        topic: run.topic,
        partition: run.partition,
        firstOffset: messages[0]?.offset ?? '',
        lastOffset: messages[messages.length - 1]?.offset ?? '',
        attempt,
        retryInMs,
      });
      await pause(retryInMs, signal, run.keepAlive);
    }
  }
}
