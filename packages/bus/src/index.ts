import { type InProcessBusOptions, inProcessBus } from './in-process.ts';
import { type KafkaBusOptions, kafkaBus } from './kafka.ts';
import type { Bus } from './types.ts';

export { describeConsumerState } from './consumer-state.ts';
export * from './in-process.ts';
export * from './kafka.ts';
export type { BusLogger } from './log.ts';
export { DEAD_LETTER_HEADERS, deadLetterHeaders } from './messages.ts';
export { backoffMs } from './process-batch.ts';
export { PRODUCER_RETRY, type SendRetry, sendWhole } from './send-whole.ts';
export * from './types.ts';

/** `KAFKA_BROKERS` (comma-separated) as a list, or undefined when unset or blank. */
export function brokersFromEnv(env: Record<string, string | undefined>): string[] | undefined {
  const brokers = (env.KAFKA_BROKERS ?? '')
    .split(',')
    .map((b) => b.trim())
    .filter(Boolean);
  return brokers.length > 0 ? brokers : undefined;
}

/** Kafka when `KAFKA_BROKERS` is set, else the in-process bus (persisted under `dataDir` when given). */
export function busFromEnv(
  env: Record<string, string | undefined>,
  opts: Omit<KafkaBusOptions, 'brokers'> & InProcessBusOptions,
): Bus {
  const brokers = brokersFromEnv(env);
  if (brokers) {
    const { dataDir: _dataDir, now: _now, ...kafka } = opts;
    return kafkaBus({ ...kafka, brokers });
  }
  return inProcessBus({
    ...(opts.dataDir === undefined ? {} : { dataDir: opts.dataDir }),
    ...(opts.now === undefined ? {} : { now: opts.now }),
    ...(opts.logger === undefined ? {} : { logger: opts.logger }),
  });
}
