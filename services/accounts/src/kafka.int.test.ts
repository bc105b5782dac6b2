import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { kafkaBus } from '@sitemail/bus';
import {
  apiKeySecretSha256,
  decodeEvent,
  generateLinkTokenKey,
  openToken,
  parseLinkTokenKey,
  type SealedToken,
  topics,
} from '@sitemail/contracts';
import { staticSiteConfig } from '@sitemail/site-config';
import {
  type ReadMessage,
  readTopic,
  type TestDatabase,
  type TestKafka,
  testDatabase,
  testDatabaseKind,
  testKafka,
} from '@sitemail/testkit';
import { type RunningAccounts, startAccounts } from './main.ts';
import { PASSWORD, smtpSite } from './testing/harness.ts';

/**
 * accounts as `npm start` runs it (startAccounts: migrations, app, outbox relay, listening), publishing
 * through kafkajs to the librdkafka mock cluster (or the Kafka of KAFKA_BROKERS); the topic is read
 * back with kafkajs.
 */
describe(`accounts events on Kafka (${testDatabaseKind()})`, () => {
  let kafka: TestKafka;
  let db: TestDatabase;
  let accounts: RunningAccounts;
  let bus: ReturnType<typeof kafkaBus>;
  const key = parseLinkTokenKey(generateLinkTokenKey('kafka-test'));
  const logLines: string[] = [];
  before(async () => {
    kafka = await testKafka({ topics: [{ name: topics.accountsEvents, partitions: 3 }] });
    db = await testDatabase('accounts_kafka');
    bus = kafkaBus({ brokers: kafka.brokers, clientId: 'accounts-test', logLevel: 'nothing' });
    accounts = await startAccounts({
      port: 0,
      db,
      bus,
      siteConfig: staticSiteConfig(smtpSite),
      linkTokenKey: key,
      passwordCost: { N: 1024, r: 8, p: 1 },
      logger: {
        level: 'info',
        stream: new Writable({
          write(chunk, _enc, done) {
            logLines.push(chunk.toString());
            done();
          },
        }),
      },
    });
  });
  after(async () => {
    await accounts?.close();
    await bus?.close();
    await db?.close();
    await kafka?.stop();
  });

  const call = async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => {
    const res = await fetch(`${accounts.url}${path}`, {
      method,
      headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  const events = (messages: ReadMessage[]) =>
    messages.map((m) => {
      const decoded = decodeEvent(m.value);
      assert.ok(decoded.ok, JSON.stringify(decoded));
      return decoded.event;
    });

  let userId: string;
  let secret: string;

  it('sign-up with SMTP configured puts UserCreated (unverified) and EmailVerificationRequested on the topic; the link verifies', async () => {
    const signUp = await call('POST', '/sign-up', {
      username: 'alice',
      email: 'alice@example.com',
      password: PASSWORD,
    });
    assert.equal(signUp.status, 201);
    userId = signUp.body.id as string;

    const first = await readTopic(kafka.brokers, topics.accountsEvents, { count: 2, timeoutMs: 60_000 });
    const [created, requested] = events(first);
    assert.equal(created?.type, 'UserCreated');
    assert.equal(created?.userId, userId);
    assert.equal(created?.position, 1);
    assert.equal(created?.type === 'UserCreated' && created.data.emailVerified, false);
    assert.equal(requested?.type, 'EmailVerificationRequested');
    assert.equal(requested?.position, 2);
    for (const m of first) {
      assert.equal(m.key, userId, 'keyed by user id');
      assert.equal(m.headers.ce_source, '/services/accounts');
      assert.equal(m.headers['content-type'], 'application/json');
    }
    assert.equal(first[0]?.headers.ce_type, 'UserCreated');
    assert.equal(first[0]?.headers.ce_id, created?.id);

    // notifications opens the sealed token; the bare token is nowhere in the message.
    const sealed = (requested!.data as { token: SealedToken }).token;
    const code = openToken(sealed, key, userId, 'EmailVerificationRequested');
    assert.ok(!first.some((m) => JSON.stringify(m).includes(code)));
    const verify = await call(
      'GET',
      `/-/verify-email?code=${encodeURIComponent(code)}&email=alice%40example.com`,
    );
    assert.equal(verify.status, 200);

    const key1 = await call(
      'POST',
      '/users/me/api-keys',
      { name: 'CI' },
      { authorization: `Basic ${Buffer.from(`alice:${PASSWORD}`).toString('base64')}` },
    );
    assert.equal(key1.status, 201);
    secret = key1.body.secret as string;

    const all = await readTopic(kafka.brokers, topics.accountsEvents, { count: 4, timeoutMs: 60_000 });
    const decoded = events(all);
    assert.deepEqual(
      decoded.map((e) => [e.type, e.position]),
      [
        ['UserCreated', 1],
        ['EmailVerificationRequested', 2],
        ['EmailVerified', 3],
        ['ApiKeyCreated', 4],
      ],
    );
    assert.deepEqual(decoded[2]?.data, { email: 'alice@example.com', method: 'verification-link' });
    assert.equal(all.length, 4, 'nothing published twice or extra');
  });

  it('ApiKeyCreated carries the key id, name, creator and hash, and the secret in no field or header', async () => {
    const all = await readTopic(kafka.brokers, topics.accountsEvents, { count: 4, timeoutMs: 60_000 });
    const created = all.find((m) => m.headers.ce_type === 'ApiKeyCreated');
    assert.ok(created);
    const event = events([created])[0];
    assert.equal(event?.type, 'ApiKeyCreated');
    assert.deepEqual(Object.keys(event?.data ?? {}).sort(), ['createdBy', 'keyId', 'name', 'secretSha256']);
    assert.equal(event?.type === 'ApiKeyCreated' && event.data.secretSha256, apiKeySecretSha256(secret));
    const body = secret.slice('sitemail_'.length);
    const forms = [
      secret,
      body,
      Buffer.from(body, 'base64url').toString('hex'),
      Buffer.from(body, 'base64url').toString('base64'),
    ];
    for (const m of all) {
      const raw = [m.key ?? '', m.value ?? '', ...Object.entries(m.headers).flat()].join('\n');
      for (const form of forms) assert.ok(!raw.includes(form), `secret found in ${m.headers.ce_type}`);
    }
  });

  it('neither the API key, the password nor the link code reaches the log', () => {
    const log = logLines.join('');
    assert.ok(log.includes('/-/verify-email?code=REDACTED'), 'the request was logged, its code redacted');
    assert.ok(!log.includes(secret));
    assert.ok(!log.includes(PASSWORD));
    assert.ok(!/code=[A-Za-z0-9_-]{20,}/.test(log));
  });
});
