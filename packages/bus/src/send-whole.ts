import type { Producer as KafkaProducer, ProducerRecord, RecordMetadata } from 'kafkajs';
import { backoffMs } from './process-batch.ts';

/**
 * kafkajs's producer is made with no retries of its own (`PRODUCER_RETRY`) and every send goes
 * through `sendWhole`. Why: kafkajs 2.2.4 keeps, across the retries of one send, the answer of
 * each broker that took its part, and after a metadata refresh sends again only to brokers with
 * no answer. When a partition's leader moved to a broker that had already answered for other
 * partitions, that partition's messages are never sent, and the send resolves as if they were
 * (kafkajs issues #1303, PR #1798; reproduced in kafka-leader-move.int.test.ts). Retrying the whole
 * record instead resends what a broker already took (at least once: consumers dedupe by event
 * id), never loses it.
 */
export const PRODUCER_RETRY = { retries: 0 } as const;

export interface SendRetry {
  /** Further attempts after the first (the bus's `retries`). */
  retries: number;
  initialMs: number;
  maxMs: number;
}

/** What kafkajs throws for a failure it would have retried (with retries 0 it gives up at once). */
const isRetriable = (e: unknown): boolean =>
  e instanceof Error &&
  (e.name === 'KafkaJSNumberOfRetriesExceeded' || (e as { retriable?: boolean }).retriable === true);

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Sends `record` until every broker took all of it in one attempt, or throws the last error. */
export async function sendWhole(
  producer: KafkaProducer,
  record: ProducerRecord,
  retry: SendRetry,
): Promise<RecordMetadata[]> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await producer.send(record);
    } catch (e) {
      if (!isRetriable(e) || attempt > retry.retries) throw e;
      await sleep(backoffMs(attempt, { initialMs: retry.initialMs, maxMs: retry.maxMs }));
    }
  }
}
