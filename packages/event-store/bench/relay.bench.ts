// npm run bench:relay [-- --events 100000 --batch 250 --payload 1024 --partitions P --writers 8 --rounds 4 --lag-rate 200 --lag-seconds 10]
// (or BENCH_EVENTS, BENCH_BATCH, ... in the environment)
//
// Appends N events (1 KB payload each) to the event store on real Postgres (DATABASE_URL, default
// postgres://postgres@127.0.0.1:5432/test) in a fresh schema, and measures in the same run:
//   raw    kafkajs sending pre-built batches of the same messages (the ceiling), to the mock cluster,
//          in a child process (its memory is not the relay's)
//   relay  the outbox relay draining those N events through the Kafka bus (kafkajs)
// (raw and relay alternate in --rounds rounds, so a machine whose load changes skews both alike)
//   lag    commit -> acknowledged by Kafka, for events appended live (one per transaction, as
//          commands do) at a steady rate while the relay runs
// and prints events/s for raw and relay, their ratio, lag p50/p99 and the process's peak RSS.
import { spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import { kafkaBus, type OutgoingMessage, type Publisher } from '@sitemail/bus';
import { type FleetEvent, toWireMessage } from '@sitemail/contracts';
import { openDatabase } from '@sitemail/db';
import { Kafka, logLevel, Partitioners } from 'kafkajs';
// The launcher alone: testkit's index also loads the SMTP test server's libraries (about 40 MiB).
import { startMockKafka } from '../../testkit/src/kafka.ts';
import {
  createEventStore,
  createOutboxRelay,
  type NewEvent,
  prepareEventStore,
  type StoredEvent,
} from '../src/index.ts';

const { values: flags } = parseArgs({
  options: {
    events: { type: 'string' },
    batch: { type: 'string' },
    payload: { type: 'string' },
    streams: { type: 'string' },
    partitions: { type: 'string' },
    writers: { type: 'string' },
    'lag-rate': { type: 'string' },
    'lag-seconds': { type: 'string' },
    rounds: { type: 'string' },
    // Internal: the raw kafkajs baseline runs in a child process, so its memory is not the relay's.
    role: { type: 'string' },
    brokers: { type: 'string' },
    topic: { type: 'string' },
    count: { type: 'string' },
  },
});
const num = (flag: string, env: string, fallback: number) => {
  const raw = (flags as Record<string, string | undefined>)[flag] ?? process.env[env];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0)
    throw new Error(`--${flag} (${env}) must be a positive number, got "${raw}"`);
  return n;
};
const N = Math.floor(num('events', 'BENCH_EVENTS', 100_000));
const BATCH = Math.floor(num('batch', 'BENCH_BATCH', 250));
const PAYLOAD = Math.floor(num('payload', 'BENCH_PAYLOAD', 1024));
const STREAMS = Math.floor(num('streams', 'BENCH_STREAMS', 1000));
const WRITERS = Math.floor(num('writers', 'BENCH_WRITERS', 8));
const ROUNDS = Math.floor(num('rounds', 'BENCH_ROUNDS', 4));
const LAG_RATE = num('lag-rate', 'BENCH_LAG_RATE', 200);
const LAG_SECONDS = num('lag-seconds', 'BENCH_LAG_SECONDS', 10);
const MESSAGE_BYTES = PAYLOAD + 450; // envelope and CloudEvents headers
// The mock cluster keeps about 5 MiB per partition: enough partitions to hold every message.
const PARTITIONS = Math.floor(
  num(
    'partitions',
    'BENCH_PARTITIONS',
    Math.max(8, Math.ceil((N * MESSAGE_BYTES * 1.25) / (5 * 1024 * 1024))),
  ),
);
const DATABASE_URL = process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test';

let peakRss = 0;
const sampleRss = () => {
  peakRss = Math.max(peakRss, process.memoryUsage.rss());
};
const rssTimer = setInterval(sampleRss, 20);
const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
const rate = (count: number, ms: number) => Math.round((count * 1000) / ms);
const percentile = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
const log = (line: string) => console.log(line);
const memory = () => {
  sampleRss();
  const m = process.memoryUsage();
  return `[rss ${mib(m.rss)}, heap ${mib(m.heapUsed)}, buffers ${mib(m.arrayBuffers)}, peak so far ${mib(peakRss)}]`;
};

/** The accounts envelope of a stored event, as the accounts service's relay sends it. */
const toMessage = (e: StoredEvent) =>
  toWireMessage({
    id: e.id,
    type: e.type,
    userId: e.streamId,
    position: e.position,
    time: e.time,
    schemaVersion: e.schemaVersion,
    data: e.data,
  } as FleetEvent);

const padding = randomBytes(PAYLOAD)
  .toString('base64url')
  .slice(0, Math.max(0, PAYLOAD - 60));
const newEvent = (n: number): NewEvent => ({
  type: 'EmailAdded',
  data: { email: `user${n}@example.com`, note: padding },
});

/** Starts this script again as the raw baseline, and returns its timing and peak RSS. */
async function rawChild(
  brokers: string[],
  topic: string,
  count: number,
): Promise<{ ms: number; peakRss: number }> {
  const args = [
    ...process.execArgv,
    process.argv[1] as string,
    '--role',
    'raw',
    '--brokers',
    brokers.join(','),
    '--topic',
    topic,
  ];
  args.push(
    '--count',
    String(count),
    '--batch',
    String(BATCH),
    '--payload',
    String(PAYLOAD),
    '--streams',
    String(STREAMS),
  );
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => {
    out += chunk.toString();
  });
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  const result = out.trim().split('\n').at(-1) ?? '';
  if (code !== 0 || !result.startsWith('{')) throw new Error(`raw baseline failed (exit ${code}): ${out}`);
  return JSON.parse(result) as { ms: number; peakRss: number };
}

/** The raw baseline: kafkajs sends pre-built batches (a ring of them, reused) of the bench's messages. */
async function rawBaseline() {
  const count = Math.floor(num('count', 'BENCH_COUNT', N));
  const brokers = (flags.brokers ?? '').split(',').filter(Boolean);
  const topic = flags.topic ?? '';
  const ring = Array.from({ length: Math.min(Math.ceil(count / BATCH), 4) }, (_, b) =>
    Array.from({ length: BATCH }, (_, i) =>
      toMessage({
        id: randomUUID(),
        streamId: randomUUID(),
        position: b * BATCH + i + 1,
        type: 'EmailAdded',
        data: newEvent(b * BATCH + i).data,
        time: new Date().toISOString(),
        schemaVersion: 1,
      }),
    ),
  );
  const kafka = new Kafka({ brokers, clientId: 'bench-raw', logLevel: logLevel.NOTHING });
  // The same producer settings as the Kafka bus's publisher.
  const producer = kafka.producer({
    idempotent: false,
    maxInFlightRequests: 1,
    createPartitioner: Partitioners.DefaultPartitioner,
  });
  await producer.connect();
  // Metadata and a warm JIT before the clock starts (each round is a fresh process).
  for (const batch of ring.slice(0, 2)) await producer.send({ topic, acks: -1, messages: batch });
  const started = performance.now();
  for (let sent = 0, b = 0; sent < count; b++) {
    const batch = ring[b % ring.length] ?? [];
    const messages = batch.length > count - sent ? batch.slice(0, count - sent) : batch;
    await producer.send({ topic, acks: -1, messages });
    sent += messages.length;
  }
  const ms = performance.now() - started;
  await producer.disconnect();
  clearInterval(rssTimer);
  sampleRss();
  console.log(JSON.stringify({ ms, peakRss: Math.max(peakRss, process.resourceUsage().maxRSS * 1024) }));
}

async function main() {
  const schema = `bench_relay_${randomBytes(4).toString('hex')}`;
  log(
    `bench:relay events=${N} payload=${PAYLOAD} B batch=${BATCH} streams=${STREAMS} partitions=${PARTITIONS} writers=${WRITERS}`,
  );
  log(
    `node ${process.version} ${process.execArgv.filter((a) => a.startsWith('--max')).join(' ') || '(V8 default heap settings)'}`,
  );
  log(`database ${DATABASE_URL.replace(/\/\/[^@/]*@/, '//***@')}, schema ${schema} ${memory()}`);
  const db = await openDatabase({ url: DATABASE_URL, schema, maxConnections: WRITERS + 2 });
  const mock = await startMockKafka({ brokers: 1 });
  const topics = { raw: 'bench.raw', relay: 'bench.relay' };
  for (const t of Object.values(topics)) await mock.createTopic(t, PARTITIONS);
  const kafka = new Kafka({ brokers: mock.brokers, clientId: 'bench-admin', logLevel: logLevel.NOTHING });
  const bus = kafkaBus({ brokers: mock.brokers, clientId: 'bench-relay', logLevel: 'error' });
  try {
    await prepareEventStore(db);
    const store = createEventStore(db);
    const streams = Array.from({ length: STREAMS }, () => randomUUID());
    // Each writer appends to its own share of the streams, so the run has no version conflicts.
    const versions = new Map<string, number>();
    const streamsOf = (w: number) => streams.filter((_, i) => i % WRITERS === w);
    const appendNext = (stream: string, events: NewEvent[]) => {
      const v = versions.get(stream) ?? 0;
      versions.set(stream, v + events.length);
      return store.append(stream, v, events);
    };

    // 1. Append N events, up to 50 per append.
    const perAppend = Math.max(1, Math.min(50, Math.floor(N / STREAMS) || 1));
    let next = 0;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: WRITERS }, async (_, w) => {
        const mine = streamsOf(w);
        for (let round = 0; ; round++) {
          const start = next;
          const count = Math.min(perAppend, N - start);
          if (count <= 0) return;
          next += count;
          const events = Array.from({ length: count }, (_, i) => newEvent(start + i));
          await appendNext(mine[round % mine.length] as string, events);
        }
      }),
    );
    const appendMs = performance.now() - t0;
    log(
      `append  ${N} events, ${perAppend} per append, in ${(appendMs / 1000).toFixed(1)} s: ${rate(N, appendMs)} events/s ${memory()}`,
    );

    // 2 and 3, alternating in ROUNDS rounds so that a machine whose load changes meanwhile skews
    // both alike: the raw kafkajs baseline (a child process) sends N/ROUNDS pre-built messages, then
    // the relay drains N/ROUNDS events of the backlog. Between its rounds the relay waits at a gate
    // in front of the publisher; only the time with the gate open counts.
    const busPublisher = await bus.publisher();
    let gate: Promise<void> | null = null;
    let openGate = () => {};
    let roundTarget = 0;
    let relayed = 0;
    let roundDone = () => {};
    // Lag ends when Kafka acknowledged the message (before the relay's cursor update).
    let lagSink: ((messages: OutgoingMessage[], ackedAt: number) => void) | undefined;
    const publisher: Publisher = {
      async publish(topic, messages) {
        if (gate) await gate;
        await busPublisher.publish(topic, messages);
        const ackedAt = performance.now();
        lagSink?.(messages, ackedAt);
        relayed += messages.length;
        if (roundTarget > 0 && relayed >= roundTarget) {
          roundTarget = 0;
          gate = new Promise((resolve) => {
            openGate = resolve;
          });
          roundDone();
        }
      },
      close: () => busPublisher.close(),
    };
    gate = new Promise((resolve) => {
      openGate = resolve;
    });
    const relay = createOutboxRelay({
      db,
      publisher,
      topic: topics.relay,
      name: 'bench',
      toMessage,
      batchSize: BATCH,
      pollIntervalMs: 250,
    });
    relay.start();
    let rawMs = 0;
    let rawPeakRss = 0;
    let relayMs = 0;
    for (let round = 1; round <= ROUNDS; round++) {
      const count = Math.floor((N * round) / ROUNDS) - Math.floor((N * (round - 1)) / ROUNDS);
      const raw = await rawChild(mock.brokers, topics.raw, count);
      rawMs += raw.ms;
      rawPeakRss = Math.max(rawPeakRss, raw.peakRss);
      const before = relayed;
      const done = new Promise<void>((resolve) => {
        roundDone = resolve;
      });
      roundTarget = Math.floor((N * round) / ROUNDS);
      const opened = performance.now();
      gate = null;
      openGate();
      await done;
      const ms = performance.now() - opened;
      relayMs += ms;
      log(
        `round ${round}: raw ${rate(count, raw.ms)} msgs/s [child peak rss ${mib(raw.peakRss)}], relay ${rate(relayed - before, ms)} events/s ${memory()}`,
      );
    }
    gate = null;
    openGate();
    const rawRate = rate(N, rawMs);
    const relayRate = rate(relayed, relayMs);

    // 4. Lag: one event per transaction at a steady rate, the relay running (woken by the appends).
    // The commit time is when the writer saw its commit; the relay can see it (and Kafka ack it)
    // before the writer's COMMIT reply arrives: such an event counts as 0 ms.
    const committedAt = new Map<string, number>();
    const ackedFirst = new Set<string>();
    const lags: number[] = [];
    lagSink = (messages, ackedAt) => {
      for (const m of messages) {
        const id = m.headers?.ce_id ?? '';
        const at = committedAt.get(id);
        if (at === undefined) {
          ackedFirst.add(id);
          continue;
        }
        lags.push(ackedAt - at);
        committedAt.delete(id);
      }
    };
    const lagTotal = Math.round(LAG_RATE * LAG_SECONDS);
    const lagStart = performance.now();
    let issued = 0;
    await Promise.all(
      Array.from({ length: WRITERS }, async (_, w) => {
        const mine = streamsOf(w);
        for (let k = 0; issued < lagTotal; k++) {
          const n = issued++;
          const wait = lagStart + (n * 1000) / LAG_RATE - performance.now();
          if (wait > 0) await new Promise((r) => setTimeout(r, wait));
          const [event] = await appendNext(mine[k % mine.length] as string, [newEvent(n)]);
          if (event && ackedFirst.delete(event.id)) lags.push(0);
          else if (event) committedAt.set(event.id, performance.now());
        }
      }),
    );
    const lagAppendMs = performance.now() - lagStart;
    await relay.waitUntilIdle();
    await relay.stop();
    await publisher.close();
    lags.sort((a, b) => a - b);
    const p50 = percentile(lags, 50).toFixed(1);
    const p99 = percentile(lags, 99).toFixed(1);
    log(
      `lag     ${lags.length} events appended live at ${rate(lagTotal, lagAppendMs)}/s: commit -> Kafka ack p50 ${p50} ms, p99 ${p99} ms, max ${(lags.at(-1) ?? Number.NaN).toFixed(1)} ms ${memory()}`,
    );

    const onTopic = await (async () => {
      const admin = kafka.admin();
      await admin.connect();
      try {
        return (await admin.fetchTopicOffsets(topics.relay)).reduce((s, p) => s + Number(p.high), 0);
      } finally {
        await admin.disconnect();
      }
    })();
    const maxRss = Math.max(peakRss, process.resourceUsage().maxRSS * 1024);
    const ratio = relayRate / rawRate;
    log('');
    log(
      `raw kafkajs    ${rawRate} msgs/s (batches of ${BATCH}, acks=all; a child process, peak RSS ${mib(rawPeakRss)})`,
    );
    log(
      `relay          ${relayRate} events/s (${onTopic} messages on its topic, ${N + lags.length} expected)`,
    );
    log(`ratio          ${ratio.toFixed(2)}  (target >= 0.5: ${ratio >= 0.5 ? 'met' : 'NOT MET'})`);
    log(`lag p50 / p99  ${p50} / ${p99} ms`);
    log(
      `peak RSS       ${mib(maxRss)}  (target <= 150 MiB: ${maxRss <= 150 * 1024 * 1024 ? 'met' : 'NOT MET'})`,
    );
  } finally {
    clearInterval(rssTimer);
    await bus.close().catch(() => {});
    await mock.stop().catch(() => {});
    await db.query(`DROP SCHEMA ${schema} CASCADE`).catch(() => {});
    await db.close();
  }
}

(flags.role === 'raw' ? rawBaseline() : main()).catch((err: unknown) => {
  console.error(`bench:relay failed: ${(err as Error)?.stack ?? String(err)}`);
  process.exit(1);
});
