import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { kafkaBus } from '@sitemail/bus';
import { generateLinkTokenKey, parseLinkTokenKey, topics } from '@sitemail/contracts';
import { type MetricSample, metricValue, parseMetrics } from '@sitemail/service-kit';
import { staticSiteConfig } from '@sitemail/site-config';
import {
  type TestDatabase,
  type TestKafka,
  testDatabase,
  testDatabaseKind,
  testKafka,
} from '@sitemail/testkit';
import { type RunningAccounts, startAccounts } from './main.ts';
import { PASSWORD, smtpSite } from './testing/harness.ts';

/** The broker fault needs the mock cluster (with KAFKA_BROKERS, a real Kafka, nothing can take it down). */
const mockOf = (kafka: TestKafka) => {
  if (!kafka.mock)
    throw new Error(
      'this test takes the broker down: run it on the Kafka mock cluster (KAFKA_BROKERS unset)',
    );
  return kafka.mock;
};

/**
 * accounts' /metrics as a scraper sees it, while the real pipeline runs: HTTP sign-ups through
 * the command runner, the outbox relay publishing to the Kafka mock cluster (through kafkajs), and
 * the broker taken down to make the outbox fill and the relay fail.
 */
describe(`accounts /metrics (${testDatabaseKind()})`, () => {
  let kafka: TestKafka;
  let db: TestDatabase;
  let accounts: RunningAccounts;
  let bus: ReturnType<typeof kafkaBus>;
  const userIds: string[] = [];

  before(async () => {
    kafka = await testKafka({ topics: [{ name: topics.accountsEvents, partitions: 2 }] });
    db = await testDatabase('accounts_metrics');
    // One request retry: a publish to a down broker fails in about a second rather than minutes.
    bus = kafkaBus({ brokers: kafka.brokers, clientId: 'metrics-test', logLevel: 'nothing', retries: 1 });
    accounts = await startAccounts({
      port: 0,
      db,
      bus,
      siteConfig: staticSiteConfig(smtpSite),
      linkTokenKey: parseLinkTokenKey(generateLinkTokenKey('metrics-test')),
      passwordCost: { N: 1024, r: 8, p: 1 },
    });
  });
  after(async () => {
    await accounts?.close();
    await bus?.close();
    await kafka?.stop();
    await db?.close();
  });

  const scrape = async (): Promise<{ samples: MetricSample[]; text: string }> => {
    const res = await fetch(`${accounts.url}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    return { samples: parseMetrics(text), text };
  };
  const until = async (what: string, ok: (s: MetricSample[]) => boolean, ms = 30_000) => {
    const deadline = Date.now() + ms;
    for (;;) {
      const { samples } = await scrape();
      if (ok(samples)) return samples;
      if (Date.now() > deadline) throw new Error(`no ${what} within ${ms} ms`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  const signUp = async (username: string) => {
    const res = await fetch(`${accounts.url}/sign-up`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username, email: `${username}@example.com`, password: PASSWORD }),
    });
    const body = (await res.json()) as { id?: string };
    if (body.id) userIds.push(body.id);
    return res.status;
  };

  const createKey = async (username: string, name: string) => {
    const res = await fetch(`${accounts.url}/users/${userIds.at(-1)}/api-keys`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        authorization: `Basic ${Buffer.from(`${username}:${PASSWORD}`).toString('base64')}`,
      },
      body: JSON.stringify({ name }),
    });
    await res.body?.cancel();
    return res.status;
  };
  const eventCount = async () =>
    Number((await db.query<{ n: number }>('SELECT count(*)::int AS n FROM events')).rows[0]?.n);

  it('exposes every accounts series, and a sign-up moves commands, relay published, lag and the HTTP histogram', async () => {
    const before = (await scrape()).samples;
    for (const name of [
      'accounts_outbox_depth',
      'accounts_relay_published_total',
      'accounts_relay_errors_total',
      'accounts_relay_lag_seconds_count',
      'process_resident_memory_bytes',
    ]) {
      assert.ok(
        before.some((s) => s.name === name),
        `${name} is exposed`,
      );
    }
    assert.equal(metricValue(before, 'accounts_relay_published_total'), 0);

    assert.equal(await signUp('alice'), 201);
    assert.equal(await createKey('alice', 'ci'), 201);
    assert.equal(
      await createKey('alice', 'ci'),
      409,
      'a second key of the same name is refused by the domain',
    );
    const stored = await eventCount();
    const after = await until(
      'published events',
      (s) =>
        metricValue(s, 'accounts_relay_published_total') === stored &&
        metricValue(s, 'accounts_outbox_depth') === 0,
    );
    const commands = (command: string, outcome: string) =>
      metricValue(after, 'accounts_commands_total', { command, outcome });
    assert.equal(commands('CreateUser', 'accepted'), 1);
    assert.equal(commands('CreateApiKey', 'accepted'), 1);
    assert.equal(
      commands('CreateApiKey', 'refused:api-key-name-taken'),
      1,
      JSON.stringify(after.filter((s) => s.name === 'accounts_commands_total')),
    );
    assert.ok(stored >= 2, `events of the sign-up and the key: ${stored}`);
    assert.equal(metricValue(after, 'accounts_relay_lag_seconds_count'), stored, 'one lag per event');
    const lag = metricValue(after, 'accounts_relay_lag_seconds_sum');
    assert.ok(lag >= 0 && lag < 30, `commit → ack lag ${lag} s`);
    assert.equal(
      metricValue(after, 'http_request_duration_seconds_count', {
        method: 'POST',
        route: '/sign-up',
        status_code: '201',
      }),
      1,
    );
  });

  it('while the broker is down the outbox fills and relay errors count; once it is back the outbox drains', async () => {
    const start = (await scrape()).samples;
    const storedBefore = await eventCount();
    await mockOf(kafka).brokerDown(1);
    try {
      assert.equal(
        await signUp('bob'),
        201,
        'accounts keeps accepting commands: the outbox holds the events',
      );
      const bobs = (await eventCount()) - storedBefore;
      const during = await until(
        'relay error',
        (s) =>
          metricValue(s, 'accounts_relay_errors_total') > metricValue(start, 'accounts_relay_errors_total'),
      );
      assert.equal(metricValue(during, 'accounts_outbox_depth'), bobs, "bob's events wait in the outbox");
    } finally {
      await mockOf(kafka).brokerUp(1);
    }
    const stored = await eventCount();
    const drained = await until(
      'drained outbox',
      (s) =>
        metricValue(s, 'accounts_outbox_depth') === 0 &&
        metricValue(s, 'accounts_relay_published_total') === stored,
      60_000,
    );
    assert.ok(stored > storedBefore);
    // The lag of bob's event spans the outage: at least the time the broker was down.
    assert.ok(
      metricValue(drained, 'accounts_relay_lag_seconds_sum') >
        metricValue(start, 'accounts_relay_lag_seconds_sum'),
    );
  });

  it('no label value carries an address or a user id of the run', async () => {
    const { samples, text } = await scrape();
    assert.ok(userIds.length >= 2);
    for (const s of samples) {
      for (const [label, value] of Object.entries(s.labels)) {
        assert.ok(!value.includes('@'), `${s.name}{${label}="${value}"} carries an @`);
        for (const id of userIds) assert.ok(!value.includes(id), `${s.name}{${label}} carries user id ${id}`);
      }
    }
    for (const id of userIds) assert.ok(!text.includes(id), `user id ${id} appears in /metrics`);
    assert.doesNotMatch(text, /example\.com/);
  });
});
