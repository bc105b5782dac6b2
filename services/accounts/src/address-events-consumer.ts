import { type Bus, type Consumer, describeConsumerState } from '@sitemail/bus';
import type { Database } from '@sitemail/db';
import type { ReadinessCheck } from '@sitemail/service-kit';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { createAddressEventsConsumer } from './application/address-events.ts';

/** The consumer once the plugin made it: shared by the plugin and `/readyz`. */
export interface AddressEventsHolder {
  consumer?: Consumer;
  /** The consumer had its partitions once: readiness no longer follows it (see the check). */
  assignedOnce?: boolean;
}

/**
 * `/readyz`'s `addressEvents` check: ready once the consumer of notifications' address events got
 * its partitions the first time; until then the reason says where the join is (the service serves
 * meanwhile). After that it no longer follows Kafka, as the relay's check: a broker outage must not
 * take accounts out of rotation for what is only shown on addresses (they catch up afterwards).
 */
export const addressEventsCheck =
  (holder: AddressEventsHolder): ReadinessCheck =>
  async () => {
    if (holder.assignedOnce) return undefined;
    const state = holder.consumer?.state();
    if (!state) return 'the address events consumer is not started';
    return state.phase === 'assigned' ? undefined : describeConsumerState(state);
  };

/**
 * Consumes `notifications.address-events.v1` (issue 11 item 6) into `address_deliverability`,
 * which the user's addresses show. Started when the app is ready and NOT awaited (issue 10: a
 * service listens before its consumer joins; after a member was killed the join lasts until its
 * session times out); `/readyz` shows the join. Stopped, its batch committed, when the app closes.
 */
export const addressEventsConsumerPlugin = fp(
  async (app: FastifyInstance, opts: { db: Database; bus: Bus; holder: AddressEventsHolder }) => {
    const log = app.log.child({ component: 'address-events-consumer' });
    const consumer = createAddressEventsConsumer({
      bus: opts.bus,
      db: opts.db,
      onStateChange: (state) => {
        if (state.phase === 'assigned') opts.holder.assignedOnce = true;
        if (state.phase === 'retrying') log.warn({ attempt: state.attempt }, describeConsumerState(state));
        else log.info({ phase: state.phase }, describeConsumerState(state));
      },
    });
    opts.holder.consumer = consumer;
    app.addHook('onReady', async () => {
      consumer
        .start()
        .catch((err) => log.error({ reason: String(err) }, 'the address events consumer did not start'));
    });
    app.addHook('onClose', async () => {
      await consumer.stop();
    });
  },
  { name: 'accounts-address-events-consumer' },
);
