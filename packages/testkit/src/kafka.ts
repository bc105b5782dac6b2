import { type ChildProcessByStdio, spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { type IHeaders, Kafka, logLevel } from 'kafkajs';

export interface MockKafka {
  /** Comma-separated, as librdkafka prints it. */
  bootstrapServers: string;
  brokers: string[];
  /** Mock broker ids start at 1. */
  brokerIds: number[];
  createTopic(name: string, partitions?: number): Promise<void>;
  /** Disconnects the broker and refuses new connections (no leader change). */
  brokerDown(id: number): Promise<void>;
  brokerUp(id: number): Promise<void>;
  /** The next `errorCodes.length` requests of `apiKey` (e.g. 0 = Produce) fail with these codes, in order. */
  pushRequestErrors(apiKey: number, errorCodes: number[]): Promise<void>;
  /** Adds `ms` of round-trip delay to a broker (-1: all brokers). */
  setRtt(brokerId: number, ms: number): Promise<void>;
  /** Moves the leadership of a topic's partition to another broker (clients must follow it). */
  setLeader(topic: string, partition: number, brokerId: number): Promise<void>;
  stop(): Promise<void>;
}

export interface KafkaTopicSpec {
  name: string;
  partitions?: number;
}

export interface StartKafkaOptions {
  /** Mock brokers (default 1): one keeps group joins and metadata simple; use more for fault tests. */
  brokers?: number;
  topics?: KafkaTopicSpec[];
}

const MISSING_LIBRDKAFKA = 'librdkafka-dev is not installed (apt-get install librdkafka-dev)';
const sourcePath = fileURLToPath(new URL('../native/mock-cluster.c', import.meta.url));

/** `node_modules/.cache/sitemail-testkit` of the nearest node_modules up from this package, else the OS temp dir. */
function cacheDir(): string {
  let dir = dirname(sourcePath);
  for (;;) {
    if (existsSync(join(dir, 'node_modules'))) return join(dir, 'node_modules', '.cache', 'sitemail-testkit');
    const parent = dirname(dir);
    if (parent === dir) return join(tmpdir(), 'sitemail-testkit');
    dir = parent;
  }
}

const builtBinaries = new Map<string, string>();

/**
 * Compiles the launcher once per source version. Several test processes may race here: each
 * compiles to its own temp name and renames, and rename is atomic, so nobody runs a half-written file.
 * `cacheDir` and `cc` (default $CC or cc) are for the launcher's own tests.
 */
export function mockClusterBinary(opts: { cacheDir?: string; cc?: string } = {}): string {
  const dir = opts.cacheDir ?? cacheDir();
  const known = builtBinaries.get(dir);
  if (known) return known;
  const source = readFileSync(sourcePath);
  const hash = createHash('sha256')
    .update(source)
    .update(process.platform)
    .update(process.arch)
    .digest('hex');
  const binary = join(dir, `mock-cluster-${hash.slice(0, 16)}`);
  if (!existsSync(binary)) {
    mkdirSync(dir, { recursive: true });
    const temp = `${binary}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
    const cc = opts.cc ?? (process.env.CC || 'cc');
    const result = spawnSync(cc, ['-O2', '-o', temp, sourcePath, '-lrdkafka'], { encoding: 'utf8' });
    if (result.error || result.status !== 0) {
      rmSync(temp, { force: true });
      const output = `${result.error?.message ?? ''}\n${result.stderr ?? ''}`;
      if (/rdkafka/.test(output)) throw new Error(MISSING_LIBRDKAFKA);
      throw new Error(`compiling the Kafka mock cluster with ${cc} failed: ${output.trim()}`);
    }
    renameSync(temp, binary);
  }
  builtBinaries.set(dir, binary);
  return binary;
}

type MockProcess = ChildProcessByStdio<Writable, Readable, null>;

/** Starts a librdkafka mock cluster in a child process that exits when this process does. */
export async function startMockKafka(opts: StartKafkaOptions = {}): Promise<MockKafka> {
  const brokerCount = opts.brokers ?? 1;
  if (!Number.isInteger(brokerCount) || brokerCount < 1 || brokerCount > 32) {
    throw new Error(`brokers must be an integer 1..32, got ${brokerCount}`);
  }
  const child: MockProcess = spawn(mockClusterBinary(), [String(brokerCount)], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout });
  const waiting: Array<{ resolve: (line: string) => void; reject: (e: Error) => void }> = [];
  let exited: Error | undefined;
  lines.on('line', (line) => waiting.shift()?.resolve(line));
  child.on('error', (e) => {
    exited = e;
    for (const w of waiting.splice(0)) w.reject(e);
  });
  const exitedPromise = new Promise<void>((resolve) =>
    child.on('exit', (code, signal) => {
      exited ??= new Error(`Kafka mock cluster exited (code ${code}, signal ${signal})`);
      for (const w of waiting.splice(0)) w.reject(exited);
      resolve();
    }),
  );

  // An idle cluster must not keep the test process alive (a forgotten stop() would hang the file
  // until the runner's timeout); it is referenced only while a reply is awaited.
  const stdoutHandle = child.stdout as Readable & { ref(): void; unref(): void };
  const setBusy = (busy: boolean) => {
    if (busy) {
      child.ref();
      stdoutHandle.ref();
    } else {
      child.unref();
      stdoutHandle.unref();
    }
  };
  const nextLine = () =>
    new Promise<string>((resolve, reject) => {
      if (exited) return reject(exited);
      waiting.push({ resolve, reject });
    });

  let queue: Promise<unknown> = Promise.resolve();
  const command = (text: string): Promise<void> => {
    const run = async () => {
      setBusy(true);
      try {
        const reply = nextLine();
        child.stdin.write(`${text}\n`);
        const line = await reply;
        if (line !== 'ok') throw new Error(`Kafka mock cluster: ${text}: ${line.replace(/^error /, '')}`);
      } finally {
        setBusy(waiting.length > 0);
      }
    };
    const result = queue.then(run, run);
    queue = result.catch(() => {});
    return result;
  };

  setBusy(true);
  const ready = await nextLine();
  setBusy(false);
  const match = /^ready (\S+)$/.exec(ready);
  if (!match?.[1]) {
    child.kill('SIGKILL');
    throw new Error(`Kafka mock cluster did not start: ${ready}`);
  }
  const bootstrapServers = match[1];
  const brokerIds = Array.from({ length: brokerCount }, (_, i) => i + 1);
  const checkBroker = (id: number) => {
    if (!brokerIds.includes(id))
      throw new Error(`no mock broker ${id} (brokers are ${brokerIds.join(', ')})`);
  };
  const validTopic = (name: string) => {
    if (!/^[A-Za-z0-9._-]{1,249}$/.test(name)) throw new Error(`invalid topic name: ${JSON.stringify(name)}`);
  };

  const mock: MockKafka = {
    bootstrapServers,
    brokers: bootstrapServers.split(','),
    brokerIds,
    async createTopic(name, partitions = 1) {
      validTopic(name);
      await command(`topic ${name} ${partitions} ${Math.min(brokerCount, 3)}`);
    },
    async brokerDown(id) {
      checkBroker(id);
      await command(`down ${id}`);
    },
    async brokerUp(id) {
      checkBroker(id);
      await command(`up ${id}`);
    },
    async pushRequestErrors(apiKey, errorCodes) {
      if (errorCodes.length === 0) throw new Error('pushRequestErrors needs at least one error code');
      await command(`errors ${apiKey} ${errorCodes.join(' ')}`);
    },
    async setRtt(brokerId, ms) {
      if (brokerId !== -1) checkBroker(brokerId);
      await command(`rtt ${brokerId} ${ms}`);
    },
    async setLeader(topic, partition, brokerId) {
      validTopic(topic);
      checkBroker(brokerId);
      if (!Number.isInteger(partition) || partition < 0) throw new Error(`invalid partition: ${partition}`);
      await command(`leader ${topic} ${partition} ${brokerId}`);
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      setBusy(true);
      child.stdin.end();
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exitedPromise;
      clearTimeout(timer);
      lines.close();
    },
  };
  for (const topic of opts.topics ?? []) await mock.createTopic(topic.name, topic.partitions);
  return mock;
}

export interface TestKafka {
  brokers: string[];
  createTopic(name: string, partitions?: number): Promise<void>;
  /** Present when running on the mock cluster: fault injection is available. */
  mock?: MockKafka;
  stop(): Promise<void>;
}

/** kafkajs without its default logger: tests keep their output, and message values never reach a log. */
const quietKafka = (brokers: string[], clientId: string) =>
  new Kafka({ brokers, clientId, logLevel: logLevel.NOTHING, retry: { retries: 5, initialRetryTime: 100 } });

/** Real Kafka when KAFKA_BROKERS is set (topics created with kafkajs admin), else a mock cluster. */
export async function testKafka(opts: StartKafkaOptions = {}): Promise<TestKafka> {
  const fromEnv = process.env.KAFKA_BROKERS?.split(',')
    .map((b) => b.trim())
    .filter(Boolean);
  if (!fromEnv?.length) {
    const mock = await startMockKafka(opts);
    return { brokers: mock.brokers, createTopic: mock.createTopic, mock, stop: mock.stop };
  }
  const admin = quietKafka(fromEnv, 'sitemail-testkit-admin').admin();
  await admin.connect();
  const createTopic = async (name: string, partitions = 1) => {
    // false means it already existed; a test asking for a topic is satisfied either way.
    await admin.createTopics({ topics: [{ topic: name, numPartitions: partitions }], waitForLeaders: true });
  };
  for (const topic of opts.topics ?? []) await createTopic(topic.name, topic.partitions);
  return { brokers: fromEnv, createTopic, stop: () => admin.disconnect() };
}

export interface ReadMessage {
  key: string | null;
  value: string | null;
  headers: Record<string, string>;
  partition: number;
  offset: string;
}

export function headersToStrings(headers: IHeaders | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers ?? {})) {
    if (value === undefined) continue;
    out[name] = (Array.isArray(value) ? value : [value]).map((v) => v.toString()).join(',');
  }
  return out;
}

/**
 * Reads every message of `topic` from the beginning until `count` arrived or the timeout passed
 * (then it rejects, saying how many arrived), for assertions. Uses a fresh consumer group, so
 * it costs one group join (about 3 s on the mock cluster).
 */
export async function readTopic(
  brokers: string[],
  topic: string,
  opts: { count: number; timeoutMs?: number },
): Promise<ReadMessage[]> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const consumer = quietKafka(brokers, 'sitemail-testkit-reader').consumer({
    groupId: `testkit-read-${randomBytes(6).toString('hex')}`,
    sessionTimeout: 6000,
    rebalanceTimeout: 3000,
    heartbeatInterval: 500,
    // disconnect() waits for the fetch in flight; the default 5 s long-poll would cost each read that much.
    maxWaitTimeInMs: 300,
  });
  const messages: ReadMessage[] = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(
            new Error(`readTopic(${topic}): ${messages.length} of ${opts.count} messages in ${timeoutMs} ms`),
          ),
        timeoutMs,
      );
      if (opts.count === 0) {
        clearTimeout(timer);
        resolve();
        return;
      }
      consumer
        .run({
          autoCommit: false,
          eachMessage: async ({ partition, message }) => {
            if (messages.length >= opts.count) return;
            messages.push({
              key: message.key?.toString() ?? null,
              value: message.value?.toString() ?? null,
              headers: headersToStrings(message.headers),
              partition,
              offset: message.offset,
            });
            if (messages.length >= opts.count) {
              clearTimeout(timer);
              resolve();
            }
          },
        })
        .catch((e: unknown) => {
          clearTimeout(timer);
          reject(e);
        });
    });
  } finally {
    await consumer.disconnect();
  }
  return messages;
}
