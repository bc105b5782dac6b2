/**
 * The faults, one scenario each, with the bound each must recover within and why. Bounds come
 * from the product's documented timings (services/notifications/README.md, packages/bus/README.md):
 * a SIGKILLed member's partitions move after the 10 s session timeout (delivering again within
 * 40 s); the emails a killed instance had claimed come back when its claim lease runs out (15 s
 * after its last heartbeat) and the next reclaim pass; a retried send waits its backoff (base 30 s,
 * jittered 50-100 %).
 */
import { randomInt } from 'node:crypto';
import { topics } from '@sitemail/contracts';
import { readTopic } from '@sitemail/testkit';
import type { EmailScenario, FaultContext, FaultOutcome } from './harness.ts';
import { poison, sleep, type WireMessage } from './load.ts';
import { liveWithin, waitReady } from './processes.ts';
import { PARTITIONS } from './stack.ts';

/** A killed instance's claimed emails: lease 15 s + a reclaim pass, then the rest of the load on a loaded machine. */
const CLAIM_BOUND_MS = 90_000;
/** Documented: a SIGKILLed notifications instance started again delivers within 40 s. */
const DELIVERS_AGAIN_MS = 40_000;
const LIVE_MS = 2_000;
/** An email the sink took just before a crash may be unrecorded by its sender: resent, same Message-ID. */
const crashWindow = (at: number, what: string, beforeMs = 5_000) => ({
  from: at - beforeMs,
  to: at + 1_000,
  what,
});

/** SIGKILL the (only) notifications instance and start it again at once. */
async function killAndRestart(ctx: FaultContext, label: string): Promise<FaultOutcome> {
  const [victim] = ctx.stack.live('notifications');
  if (!victim) throw new Error('no notifications instance to kill');
  const killedAt = Date.now();
  await victim.kill();
  const again = await ctx.stack.restart(victim);
  const faultEnd = Date.now();
  const readyMs = await waitReady(again, DELIVERS_AGAIN_MS).catch(() => undefined);
  let deliveringAt: number | undefined;
  while (Date.now() - killedAt < DELIVERS_AGAIN_MS + 5_000) {
    await ctx.tracker.poll();
    deliveringAt = ctx.tracker.firstAfter(faultEnd);
    if (deliveringAt) break;
    await sleep(100);
  }
  const delivering = deliveringAt ? deliveringAt - killedAt : undefined;
  const failures: string[] = [];
  const live = liveWithin(again, LIVE_MS);
  if (!live.ok) failures.push(`${live.how}: not under ${LIVE_MS} ms`);
  if (delivering === undefined || delivering > DELIVERS_AGAIN_MS)
    failures.push(`delivering again ${delivering ?? 'never'} ms after the kill (bound ${DELIVERS_AGAIN_MS})`);
  return {
    faultEnd,
    windows: [crashWindow(killedAt, label)],
    boundMs: CLAIM_BOUND_MS,
    extra:
      `${label}: restarted instance ${live.how} (bound ${LIVE_MS} ms), ` +
      `ready ${readyMs !== undefined ? ((faultEnd - killedAt + readyMs) / 1000).toFixed(1) : '—'} s and delivering ` +
      `${delivering !== undefined ? (delivering / 1000).toFixed(1) : '—'} s after the kill (bound 40 s)`,
    failures,
  };
}

const seconds = (ctx: FaultContext, full: number, quick: number) => (ctx.size.quick ? quick : full) * 1000;

export const emailScenarios: EmailScenario[] = [
  {
    name: 'notifications SIGKILL while handling',
    notifications: 1,
    async fault(ctx) {
      await ctx.published(0.4);
      return killAndRestart(ctx, 'SIGKILL mid-consume');
    },
  },
  {
    name: 'notifications SIGKILL in SMTP DATA',
    notifications: 1,
    async fault(ctx) {
      await ctx.received(0.2);
      // Replies to DATA held back, so the kill lands while messages are on the wire.
      await ctx.stack.sink.mode({ dataDelayMs: 2_000 });
      const until = Date.now() + 5_000;
      while ((await ctx.stack.sink.stats(Number.MAX_SAFE_INTEGER)).inData < 2 && Date.now() < until)
        await sleep(50);
      const inData = (await ctx.stack.sink.stats(Number.MAX_SAFE_INTEGER)).inData;
      const outcome = killAndRestart(ctx, `SIGKILL with ${inData} message(s) in DATA`);
      await ctx.stack.sink.mode({ dataDelayMs: 0 });
      return outcome;
    },
  },
  {
    name: 'Kafka broker down',
    notifications: 2,
    async fault(ctx) {
      await ctx.published(0.3);
      const downMs = seconds(ctx, 30, 8);
      await ctx.stack.kafka.brokerDown(2);
      await sleep(downMs);
      await ctx.stack.kafka.brokerUp(2);
      return {
        faultEnd: Date.now(),
        windows: [],
        boundMs: 90_000,
        extra: `broker 2 of 3 down ${downMs / 1000} s`,
      };
    },
  },
  {
    name: 'partition leaders move',
    notifications: 2,
    async fault(ctx) {
      await ctx.published(0.3);
      // Every partition of both topics moves to the next broker, twice, 3 s apart.
      for (let round = 1; round <= 2; round++) {
        for (const topic of [topics.accountsEvents, topics.codeMonitoringEvents]) {
          for (let p = 0; p < PARTITIONS; p++)
            await ctx.stack.kafka.setLeader(topic, p, ((p + round) % 3) + 1);
        }
        await sleep(3_000);
      }
      return {
        faultEnd: Date.now(),
        windows: [],
        boundMs: 60_000,
        extra: `${2 * 2 * PARTITIONS} leader moves`,
      };
    },
  },
  {
    name: 'SMTP server down',
    notifications: 1,
    async fault(ctx) {
      await ctx.received(0.2);
      const downMs = seconds(ctx, 60, 10);
      const downAt = Date.now();
      await ctx.stack.sink.mode({ down: true });
      await sleep(downMs);
      await ctx.stack.sink.mode({ down: false });
      // Retries wait their backoff (15-30 s, then 30-60 s, 60-120 s after each failure).
      return {
        faultEnd: Date.now(),
        windows: [crashWindow(downAt, 'connections dropped', 1_000)],
        boundMs: 200_000,
        extra: `sink refusing connections ${downMs / 1000} s`,
      };
    },
  },
  {
    name: 'SMTP 421 storm',
    notifications: 1,
    async fault(ctx) {
      await ctx.received(0.2);
      const stormMs = seconds(ctx, 30, 8);
      await ctx.stack.sink.mode({ greet421: true });
      await sleep(stormMs);
      await ctx.stack.sink.mode({ greet421: false });
      const { greeted421 } = await ctx.stack.sink.stats(Number.MAX_SAFE_INTEGER);
      return {
        faultEnd: Date.now(),
        windows: [],
        boundMs: 120_000,
        extra: `${stormMs / 1000} s of "421 4.7.0 Try again later" greetings (${greeted421} connections refused)`,
      };
    },
  },
  {
    name: 'Postgres restarted',
    notifications: 2,
    accounts: 1,
    async fault(ctx) {
      await ctx.published(0.3);
      const downMs = seconds(ctx, 5, 3);
      const stoppedAt = Date.now();
      await ctx.postgres.restart(downMs);
      const faultEnd = Date.now();
      return {
        faultEnd,
        // Sent while the outcome could not be written: resent after the claim expires.
        windows: [{ from: stoppedAt - 5_000, to: faultEnd + 5_000, what: 'outcomes not writable' }],
        boundMs: CLAIM_BOUND_MS,
        extra: `immediate shutdown, down ${((faultEnd - stoppedAt) / 1000).toFixed(1)} s, during appends and deliveries`,
      };
    },
  },
  {
    name: 'poison + duplicate redelivery',
    notifications: 2,
    mix(load) {
      const bad = poison(Math.max(3, Math.round(load.length * 0.05)));
      const again = load.filter((_, i) => i % 5 === 0);
      const messages: WireMessage[] = [...load];
      for (const m of [...bad, ...again]) messages.splice(randomInt(messages.length + 1), 0, m);
      return {
        messages,
        note: `${bad.length} poison and ${again.length} redelivered events mixed in`,
        async check(stack) {
          const dead = await readTopic(stack.kafka.brokers, topics.notificationsDeadLetter, {
            count: bad.length,
            timeoutMs: 60_000,
          }).catch((e: Error) => e);
          return dead instanceof Error ? [`dead letters: ${dead.message}`] : [];
        },
      };
    },
    async fault(ctx) {
      await ctx.published(1);
      return { faultEnd: Date.now(), windows: [], boundMs: 60_000 };
    },
  },
  {
    name: '1 of 3 notifications killed, 1 added',
    notifications: 3,
    async fault(ctx) {
      await ctx.received(0.3);
      const victim = ctx.stack.live('notifications')[1]!;
      const killedAt = Date.now();
      await victim.kill();
      const added = await ctx.stack.start('notifications');
      const readyMs = await waitReady(added, 60_000).catch(() => undefined);
      return {
        faultEnd: Date.now(),
        windows: [crashWindow(killedAt, 'SIGKILL')],
        boundMs: CLAIM_BOUND_MS,
        extra: `${victim.label} SIGKILLed, ${added.label} added (ready ${readyMs !== undefined ? (readyMs / 1000).toFixed(1) : '—'} s after it was live)`,
      };
    },
  },
];

/**
 * The quick run's one row for what needs no crash: poison messages and redeliveries on the topic
 * while the sink refuses 10 % with 550 (each proven as in its own full row: every poison message
 * dead-lettered, no redelivery a second email, no refused email sent again), on one stack.
 */
export const quickMixScenario: EmailScenario = {
  ...emailScenarios.find((s) => s.name === 'poison + duplicate redelivery')!,
  name: 'poison + duplicate redelivery + 550 for 10 %',
  // One instance: a process start fewer (the full row has two).
  notifications: 1,
  async before(stack) {
    await stack.sink.mode({ share550: 0.1 });
  },
};

/** A share of 550s: expected is what the sink did not refuse; a refused email is never retried. */
export const share550Scenario: EmailScenario = {
  name: 'SMTP 550 for 10 %',
  notifications: 1,
  async before(stack) {
    await stack.sink.mode({ share550: 0.1 });
  },
  async fault(ctx) {
    await ctx.published(1);
    return { faultEnd: Date.now(), windows: [], boundMs: 60_000 };
  },
};
