import { type TestKafka, testKafka } from '@sitemail/testkit';
import { busBehaviourSuite } from './behaviour-suite.ts';
import { kafkaBus } from './kafka.ts';

let kafka: TestKafka;
busBehaviourSuite(process.env.KAFKA_BROKERS ? 'kafka (KAFKA_BROKERS)' : 'kafka (librdkafka mock cluster)', {
  async setup() {
    kafka = await testKafka();
  },
  teardown: () => kafka.stop(),
  // Short group timeouts: the mock cluster holds a re-join after a leave for session timeout - 1 s.
  // A short fetch wait keeps stop() quick.
  openBus: () =>
    kafkaBus({
      brokers: kafka.brokers,
      clientId: 'bus-test',
      logLevel: 'error',
      sessionTimeoutMs: 4000,
      rebalanceTimeoutMs: 3000,
      heartbeatIntervalMs: 500,
      maxWaitTimeMs: 300,
    }),
  createTopic: (name, partitions) => kafka.createTopic(name, partitions),
});
