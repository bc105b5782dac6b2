/**
 * The shape every email scenario shares: a fresh stack, N notifications instances (and accounts
 * when the scenario drives its API), recipients seeded, code monitor notifications published at a
 * steady pace while the scenario's fault runs beside the load, then the wait for every expected
 * email and the verdict (report.ts).
 */
import { Kafka, logLevel } from 'kafkajs';
import { basic, call, newPerson, token } from '../e2e/client.ts';
import { monitorEvents, publish, recipients, sleep, Tracker, topicOf, type WireMessage } from './load.ts';
import type { PrivatePostgres } from './postgres.ts';
import { readiness, type Sink, waitReady } from './processes.ts';
import { type FaultWindow, judge, type Row } from './report.ts';
import { type ChaosStack, startStack } from './stack.ts';

export interface Size {
  /** Code monitor notifications (one email each) per scenario. */
  emails: number;
  /** Users they go to. */
  recipients: number;
  /** Users created through accounts' API, where a scenario drives it (one set-password email each). */
  users: number;
  /** How long a fault lasts where the issue names a duration (broker 30 s, SMTP 60 s). */
  scale: number;
  quick: boolean;
}

export interface FaultContext {
  stack: ChaosStack;
  tracker: Tracker;
  size: Size;
  postgres: PrivatePostgres;
  /** Resolves once this share of the scenario's load was published. */
  published(share: number): Promise<void>;
  /** Resolves once this share of the expected emails arrived at the sink. */
  received(share: number): Promise<void>;
}

export interface FaultOutcome {
  faultEnd: number;
  windows: FaultWindow[];
  boundMs: number;
  extra?: string;
  failures?: string[];
}

export interface EmailScenario {
  name: string;
  notifications: number;
  /** Accounts instances; with any, `size.users` users are created over its API during the load. */
  accounts?: number;
  /** Extra messages for the code monitoring topic (poison, duplicates), mixed into the load. */
  mix?: (load: WireMessage[]) => {
    messages: WireMessage[];
    note: string;
    check?: (stack: ChaosStack) => Promise<string[]>;
  };
  before?: (stack: ChaosStack) => Promise<void>;
  fault: (ctx: FaultContext) => Promise<FaultOutcome>;
}

/** Generous: on the loaded shared machine a group join plus a start took up to a minute. */
const READY_WITHIN_MS = 120_000;

/** The first user (site admin, builtin sign-up) and an API key for it. */
export async function adminOf(url: string): Promise<string> {
  const p = newPerson('chaos-admin');
  const user = await call<{ id: string }>(url, 'POST', '/sign-up', { body: p });
  if (user.status !== 201) throw new Error(`sign-up: ${user.status} ${JSON.stringify(user.body)}`);
  const key = await call<{ secret: string }>(url, 'POST', `/users/${user.body.id}/api-keys`, {
    auth: basic(p.username, p.password),
    body: { name: 'chaos' },
  });
  if (key.status !== 201) throw new Error(`api key: ${key.status}`);
  return token(key.body.secret);
}

/**
 * Creates `n` users (origin site-admin: one set-password email each) over the API of whichever
 * accounts instance answers, 4 at a time. A request that failed (its instance killed) is sent to
 * another; a 409 then means the first one had committed.
 */
export async function createUsers(
  stack: ChaosStack,
  auth: string,
  n: number,
  tag: string,
  onCreated?: (count: number) => void,
): Promise<string[]> {
  const emails = Array.from({ length: n }, (_, i) => `u${i}-${tag}@users.chaos.example.com`);
  let next = 0;
  let created = 0;
  let turn = 0;
  const worker = async () => {
    while (next < emails.length) {
      const i = next++;
      const body = { username: `u${i}-${tag}`, email: emails[i], origin: 'site-admin' };
      for (let attempt = 0; ; attempt++) {
        const live = stack.live('accounts');
        const target = live[turn++ % Math.max(1, live.length)];
        if (!target) throw new Error('no accounts instance alive');
        const reply = await call(target.url, 'POST', '/users', { auth, body }).catch(() => undefined);
        if (reply && (reply.status === 201 || reply.status === 409)) break;
        if (attempt > 200) throw new Error(`creating user ${i}: ${reply?.status}`);
        await sleep(250);
      }
      onCreated?.(++created);
    }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
  return emails;
}

export async function runEmailScenario(
  s: EmailScenario,
  size: Size,
  postgres: PrivatePostgres,
  sink: Sink,
): Promise<Row> {
  const stack = await startStack(postgres, sink, s.name);
  const tracker = new Tracker(sink);
  try {
    await s.before?.(stack);
    const notifications = await Promise.all(
      Array.from({ length: s.notifications }, () => stack.start('notifications')),
    );
    const accounts = [];
    for (let i = 0; i < (s.accounts ?? 0); i++) accounts.push(await stack.start('accounts'));
    await Promise.all([...notifications, ...accounts].map((i) => waitReady(i, READY_WITHIN_MS)));

    const tag = s.name.replace(/[^a-z0-9]/g, '').slice(0, 10);
    const users = recipients(size.recipients, tag);
    await publish(stack.producer, topicOf.users, users.messages);
    const monitors = monitorEvents(users.recipients, size.emails, tag);
    const mixed = s.mix?.(monitors.messages);
    const load = mixed?.messages ?? monitors.messages;
    const auth = accounts.length > 0 ? await adminOf(accounts[0]!.url) : undefined;

    let sent = 0;
    const total = load.length + (auth ? size.users : 0);
    const shareWaiters: { share: number; resolve: () => void }[] = [];
    const progress = () => {
      for (const w of shareWaiters.filter((w) => sent >= w.share * total)) {
        shareWaiters.splice(shareWaiters.indexOf(w), 1);
        w.resolve();
      }
    };
    const keys = [...monitors.keys];
    const loadStarted = Date.now();
    // Published over ~10 s (full run), so faults meet events still being handled.
    const pacing = size.quick ? { chunk: 10, pauseMs: 200 } : { chunk: 50, pauseMs: 250 };
    let lastMonitors = 0;
    const loadDone = Promise.all([
      publish(stack.producer, topicOf.monitors, load, {
        ...pacing,
        onProgress: (n) => {
          sent += n - lastMonitors;
          lastMonitors = n;
          progress();
        },
      }),
      auth
        ? createUsers(stack, auth, size.users, tag, () => {
            sent++;
            progress();
          }).then((emails) => keys.push(...emails))
        : Promise.resolve(),
    ]);
    const ctx: FaultContext = {
      stack,
      tracker,
      size,
      postgres,
      published: (share) =>
        new Promise<void>((resolve) => {
          shareWaiters.push({ share, resolve });
          progress();
        }),
      async received(share) {
        while (tracker.received(monitors.keys) < share * monitors.keys.length) {
          await tracker.poll();
          await sleep(100);
        }
      },
    };
    const [outcome] = await Promise.all([s.fault(ctx), loadDone]);
    const waitMs = Math.max(5_000, outcome.faultEnd + outcome.boundMs + 5_000 - Date.now());
    await tracker.waitFor(keys, waitMs);
    await tracker.poll();
    // A 550 is final: those emails are not expected, and each must have been refused once.
    const refused = new Set(tracker.refused);
    const expected = keys.filter((k) => !refused.has(k));
    keys.length = 0;
    keys.push(...expected);
    const retried550 = tracker.refused.length - refused.size;
    const drainedAt = tracker.received(keys) === keys.length ? tracker.lastFirstArrival(keys) : undefined;
    const failures = [...(outcome.failures ?? []), ...((await mixed?.check?.(stack)) ?? [])];
    if (retried550 > 0) failures.push(`${retried550} email(s) refused with 550 were sent again`);
    let stalled: string | undefined;
    for (const instance of stack.live('notifications')) {
      const ready = await waitReady(instance, 30_000).then(
        () => true as const,
        (e: Error) => e.message,
      );
      if (ready !== true) stalled = ready;
    }
    if (drainedAt === undefined) {
      const gap = tracker.longestGap(loadStarted, Date.now());
      stalled ??= `not drained (longest silence at the sink ${Math.round(gap / 1000)} s)`;
      for (const i of stack.live('notifications')) failures.push(`${i.label} /readyz: ${await readiness(i)}`);
      failures.push(...(await partitionsBehind(stack)));
      failures.push(...(await whereMissing(stack, tracker, keys)));
    }
    return judge(s.name, {
      keys,
      tracker,
      faultEnd: outcome.faultEnd,
      windows: outcome.windows,
      boundMs: outcome.boundMs,
      stalled,
      eventsIn: users.messages.length + load.length + (auth ? await countEvents(stack) : 0),
      drainedAt,
      extra: [
        mixed?.note,
        outcome.extra,
        refused.size ? `${refused.size} refused with 550, none retried` : '',
      ]
        .filter(Boolean)
        .join('; '),
      failures,
    });
  } finally {
    await stack.stop();
  }
}

/** The notifications group's committed offset against the high watermark, for each partition behind. */
async function partitionsBehind(stack: ChaosStack): Promise<string[]> {
  const admin = new Kafka({
    brokers: stack.kafka.brokers,
    clientId: 'chaos-check',
    logLevel: logLevel.NOTHING,
  }).admin();
  try {
    await admin.connect();
    const behind: string[] = [];
    for (const topic of [topicOf.users, topicOf.monitors]) {
      const high = await admin.fetchTopicOffsets(topic);
      const [committed] = await admin.fetchOffsets({ groupId: 'notifications', topics: [topic] });
      for (const h of high) {
        const c = committed?.partitions.find((p) => p.partition === h.partition)?.offset ?? '-1';
        if (Number(c) < Number(h.high)) behind.push(`${topic}/${h.partition} committed ${c} of ${h.high}`);
      }
    }
    return behind.length
      ? [`consumer group behind on ${behind.length} partition(s): ${behind.join(', ')}`]
      : [];
  } catch (err) {
    return [`offsets not readable: ${(err as Error).message}`];
  } finally {
    await admin.disconnect().catch(() => {});
  }
}

/** For the first few expected emails the sink never got: their delivery rows, or that there is none. */
async function whereMissing(stack: ChaosStack, tracker: Tracker, keys: string[]): Promise<string[]> {
  const missing = keys.filter((k) => !tracker.messageIdsByKey.has(k)).slice(0, 5);
  const found: string[] = [];
  for (const key of missing) {
    const rows = await stack
      .query<{ status: string; attempt_count: number; last_error: string | null; next: string | null }>(
        `SELECT status, attempt_count, last_error, next_attempt_at::text AS next FROM notifications.deliveries
         WHERE recipient_address = $1 OR message::text ~ ($1 || '([^0-9]|$)') LIMIT 3`,
        [key],
      )
      .catch((e: Error) => e);
    found.push(
      rows instanceof Error
        ? `${key}: deliveries not readable (${rows.message})`
        : rows.length === 0
          ? `${key}: no delivery`
          : `${key}: ${rows.map((r) => `${r.status} after ${r.attempt_count} attempt(s), next ${r.next ?? '—'}${r.last_error ? ` (${r.last_error})` : ''}`).join('; ')}`,
    );
  }
  return missing.length ? [`missing: ${found.join(' | ')}`] : [];
}

/** Events accounts appended (its outbox), for the events-in column. */
export async function countEvents(stack: ChaosStack): Promise<number> {
  const rows = await stack.query<{ n: string }>('SELECT count(*) AS n FROM accounts.events');
  return Number(rows[0]?.n ?? 0);
}
