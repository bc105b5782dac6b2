/**
 * Two accounts instances on one schema: the first holds the outbox relay's lease, the second
 * stands by. Users are created through both while the holder is SIGKILLed mid-load (during
 * appends and while it relays); the standby must publish within the lease (30 s) plus a margin,
 * every committed event must reach the topic, in per-user order (a batch published but not yet
 * marked may be published again: at least once), and every set-password email must arrive. The
 * killed instance is started again and stands by.
 */
import { topics } from '@sitemail/contracts';
import { readTopic } from '@sitemail/testkit';
import { Kafka, logLevel } from 'kafkajs';
import { adminOf, countEvents, createUsers, type Size } from './harness.ts';
import { sleep, Tracker } from './load.ts';
import type { PrivatePostgres } from './postgres.ts';
import { type Sink, waitReady } from './processes.ts';
import { judge, type Row } from './report.ts';
import { type ChaosStack, startStack } from './stack.ts';

/** The relay's default lease (packages/event-store: leaseMs) plus the standby's poll and a loaded machine. */
const TAKEOVER_BOUND_MS = 30_000 + 10_000;

interface Lease {
  owner: string | null;
  published: string;
}

const lease = async (stack: ChaosStack) =>
  (
    await stack.query<Lease>(
      "SELECT owner, published::text FROM accounts.outbox_relays WHERE name = 'accounts-events'",
    )
  )[0];

const pidOf = (owner: string | null | undefined) => Number(owner?.split(':')[1] ?? Number.NaN);

/** Every message on the accounts topic, and whether per-user order held among first copies. */
async function topicCheck(
  stack: ChaosStack,
): Promise<{ failures: string[]; messages: number; republished: number }> {
  const admin = new Kafka({
    brokers: stack.kafka.brokers,
    clientId: 'chaos-check',
    logLevel: logLevel.NOTHING,
  }).admin();
  await admin.connect();
  const offsets = await admin.fetchTopicOffsets(topics.accountsEvents);
  await admin.disconnect();
  const count = offsets.reduce((n, o) => n + Number(o.high), 0);
  const messages = await readTopic(stack.kafka.brokers, topics.accountsEvents, { count, timeoutMs: 90_000 });
  const seen = new Set<string>();
  const lastPosition = new Map<string, number>();
  const failures: string[] = [];
  let republished = 0;
  for (const m of messages) {
    const event = JSON.parse(m.value ?? '{}') as { id: string; userId: string; position: number };
    if (seen.has(event.id)) {
      republished++;
      continue;
    }
    seen.add(event.id);
    const last = lastPosition.get(event.userId) ?? 0;
    if (event.position <= last && failures.length < 5)
      failures.push(`user ${event.userId}: position ${event.position} after ${last} (order broken)`);
    lastPosition.set(event.userId, Math.max(last, event.position));
  }
  const stored = await stack.query<{ event_id: string }>('SELECT event_id::text FROM accounts.events');
  const missing = stored.filter((r) => !seen.has(r.event_id)).length;
  if (missing > 0) failures.push(`${missing} committed event(s) never reached the topic`);
  return { failures, messages: count, republished };
}

export async function accountsScenario(size: Size, postgres: PrivatePostgres, sink: Sink): Promise<Row> {
  const name = 'accounts SIGKILL (relay holder)';
  const stack = await startStack(postgres, sink, 'accounts');
  const tracker = new Tracker(sink);
  try {
    const notifications = await stack.start('notifications');
    const first = await stack.start('accounts');
    await waitReady(first, 60_000);
    const second = await stack.start('accounts');
    await Promise.all([waitReady(second, 60_000), waitReady(notifications, 60_000)]);
    const auth = await adminOf(first.url);
    let holder = await lease(stack);
    for (let i = 0; i < 50 && Number.isNaN(pidOf(holder?.owner)); i++) {
      await sleep(200);
      holder = await lease(stack);
    }
    const victim = [first, second].find((i) => i.pid === pidOf(holder?.owner));
    if (!victim) throw new Error(`no instance holds the relay lease: ${JSON.stringify(holder)}`);
    const standby = victim === first ? second : first;

    let created = 0;
    let killedAt = 0;
    let createdAtKill = 0;
    let killed: Promise<void> | undefined;
    const load = createUsers(stack, auth, size.users, 'acct', (n) => {
      created = n;
      if (!killed && created >= size.users * 0.4) {
        killedAt = Date.now();
        createdAtKill = n;
        killed = victim.kill();
      }
    });
    while (!killed) await sleep(50);
    await killed;
    // The standby's turn: it owns the lease and its cursor moves.
    const publishedAtKill = Number((await lease(stack))?.published ?? 0);
    let takeoverMs: number | undefined;
    while (Date.now() - killedAt < TAKEOVER_BOUND_MS + 20_000) {
      const now = await lease(stack).catch(() => undefined);
      if (now && pidOf(now.owner) === standby.pid && Number(now.published) > publishedAtKill) {
        takeoverMs = Date.now() - killedAt;
        break;
      }
      await sleep(200);
    }
    const restarted = await stack.restart(victim);
    const restartReady = await waitReady(restarted, 60_000);
    const emails = await load;
    const faultEnd = killedAt + (takeoverMs ?? 0);
    const boundMs = TAKEOVER_BOUND_MS + 60_000;
    await tracker.waitFor(emails, Math.max(5_000, faultEnd + boundMs - Date.now()));
    const drainedAt =
      tracker.received(emails) === emails.length ? tracker.lastFirstArrival(emails) : undefined;
    const topic = await topicCheck(stack);
    const failures = [...topic.failures];
    if (takeoverMs === undefined || takeoverMs > TAKEOVER_BOUND_MS)
      failures.push(
        `standby published ${takeoverMs ?? 'never'} ms after the kill (bound ${TAKEOVER_BOUND_MS})`,
      );
    return judge(name, {
      keys: emails,
      tracker,
      faultEnd,
      windows: [],
      boundMs,
      stalled: undefined,
      eventsIn: await countEvents(stack),
      drainedAt,
      extra:
        `${victim.label} (lease holder) SIGKILLed after ${createdAtKill} of ${size.users} users; ${standby.label} published ` +
        `${takeoverMs !== undefined ? (takeoverMs / 1000).toFixed(1) : '—'} s later (lease 30 s); ${victim.label}' live ` +
        `${Math.round(restarted.liveMs)} ms, ready ${(restartReady / 1000).toFixed(1)} s later; topic: ${topic.messages} ` +
        `messages, ${topic.republished} published twice (the batch in flight at the kill), per-user order held` +
        `${topic.failures.length ? ' NOT' : ''}`,
      failures,
    });
  } finally {
    await stack.stop();
  }
}
