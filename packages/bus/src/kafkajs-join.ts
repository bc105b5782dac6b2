import { createRequire } from 'node:module';

const SHARED = Symbol.for('sitemail.bus.sharedGroupJoin');
const IN_FLIGHT = Symbol('sitemail.bus.joinInFlight');

interface ConsumerGroupPrototype {
  joinAndSync(this: ConsumerGroupInstance): Promise<void>;
  [SHARED]?: true;
}
interface ConsumerGroupInstance {
  [IN_FLIGHT]?: Promise<void>;
}

/**
 * Makes a kafkajs consumer run one group join at a time, shared by every caller that asks for
 * one while it is in flight. kafkajs (2.2.4) fetches with one fetcher per broker, and each
 * fetcher that is told "not the leader for that topic-partition" rejoins the group on its own
 * (ConsumerGroup.recoverFromFetch). When the leaders of several brokers' partitions move at
 * once, a member sends several JoinGroups together: each opens a new generation, the others'
 * SyncGroups then fail with ILLEGAL_GENERATION and retry, and the member can stay in that storm
 * for minutes, assigned and fetching nothing (measured on a 3-broker mock cluster, see README
 * "Group timeouts"). One shared join ends it in one round. kafkajs is looked up by the same
 * resolution as the bus's own import, so this patches the copy the bus uses, once per process.
 * Returns false when that copy has no such method (another kafkajs version): the progress
 * watchdog still restarts a stalled consumer.
 */
export function shareGroupJoins(): boolean {
  let proto: ConsumerGroupPrototype | undefined;
  try {
    // kafkajs has no "exports" map, so its internal module resolves like its main one.
    const require = createRequire(import.meta.url);
    const groupModule = require('kafkajs/src/consumer/consumerGroup.js') as {
      prototype?: ConsumerGroupPrototype;
    };
    proto = groupModule.prototype;
  } catch {
    return false;
  }
  if (!proto || typeof proto.joinAndSync !== 'function') return false;
  if (proto[SHARED]) return true;
  const join = proto.joinAndSync;
  proto.joinAndSync = function sharedJoinAndSync(this: ConsumerGroupInstance) {
    const inFlight =
      this[IN_FLIGHT] ??
      join.call(this).finally(() => {
        this[IN_FLIGHT] = undefined;
      });
    this[IN_FLIGHT] = inFlight;
    return inFlight;
  };
  proto[SHARED] = true;
  return true;
}
