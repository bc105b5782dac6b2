import { type TestKafka, testKafka } from '@sitemail/testkit';
import { busBehaviourSuite } from './behaviour-suite.ts';
import { kafkaBus } from './kafka.ts';

let kafka: TestKafka;
busBehaviourSuite(process.env.KAFKA_BROKERS ? 'kafka (KAFKA_BROKERS)' : 'kafka (librdkafka mock cluster)', {
  async setup() {
    kafka = await testKafka();
  },
  teardown: () => kafka.stop(),
  // Short group timeouts: a re-join otherwise waits out the default 60 s rebalance timeout.
  openBus: () =>
    kafkaBus({
      brokers: kafka.brokers,
      clientId: 'bus-test',
      logLevel: 'error',
      sessionTimeoutMs: 6000,
      rebalanceTimeoutMs: 3000,
      heartbeatIntervalMs: 500,
    }),
  createTopic: (name, partitions) => kafka.createTopic(name, partitions),
});
