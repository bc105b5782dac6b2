import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { type Bus, type DecodedMessage, inProcessBus, MalformedMessageError } from '@sitemail/bus';
import {
  type AccountsEvent,
  decodeEvent,
  generateLinkTokenKey,
  parseLinkTokenKey,
  topics,
} from '@sitemail/contracts';
import { staticSiteConfig } from '@sitemail/site-config';
import { type TestDatabase, testDatabase, testDatabaseKind } from '@sitemail/testkit';
import { type RunningAccounts, redactUrl, startAccounts } from './main.ts';
import { noSmtpSite, PASSWORD } from './testing/harness.ts';

/** startAccounts as the root `npm start` runs it: the embedded in-process bus, graceful close. */
describe(`startAccounts with the in-process bus (${testDatabaseKind()})`, () => {
  let db: TestDatabase;
  let bus: Bus;
  let accounts: RunningAccounts;
  before(async () => {
    db = await testDatabase('accounts_main');
    bus = inProcessBus();
    accounts = await startAccounts({
      port: 0,
      db,
      bus,
      siteConfig: staticSiteConfig(noSmtpSite),
      linkTokenKey: parseLinkTokenKey(generateLinkTokenKey('main-test')),
    });
  });
  after(async () => {
    await accounts.close();
    await bus.close();
    await db.close();
  });

  it('publishes committed events to the accounts topic for an in-process consumer', async () => {
    const res = await fetch(`${accounts.url}/sign-up`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'alice', email: 'alice@example.com', password: PASSWORD }),
    });
    assert.equal(res.status, 201);
    const user = (await res.json()) as { id: string };
    const received: AccountsEvent[] = [];
    const consumer = bus.consumer<AccountsEvent>({
      groupId: 'main-test',
      topics: [topics.accountsEvents],
      fromBeginning: true,
      deadLetterTopic: topics.notificationsDeadLetter,
      decode: (m) => {
        const d = decodeEvent(m.value);
        if (!d.ok) throw new MalformedMessageError('invalid', d.problems);
        return d.event as AccountsEvent;
      },
      handleBatch: async (batch: DecodedMessage<AccountsEvent>[]) => {
        received.push(...batch.map((b) => b.value));
      },
    });
    await consumer.start();
    for (let i = 0; i < 100 && received.length === 0; i++) await new Promise((r) => setTimeout(r, 50));
    await consumer.stop();
    assert.deepEqual(
      received.map((e) => [e.type, e.userId, e.position]),
      [['UserCreated', user.id, 1]],
    );
  });

  it('close() lets a request in flight finish, then stops listening', async () => {
    // `Expect: 100-continue`: the server answers 100 once it has the request's head, so close()
    // starts while the request is surely in flight; the body follows after.
    const req = request(`${accounts.url}/sign-up`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', expect: '100-continue' },
    });
    const response = new Promise<{ status: number; body: string }>((resolve, reject) => {
      req.on('error', reject);
      req.on('response', (res) => {
        let body = '';
        res.on('data', (chunk) => {
          body += chunk;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
    });
    await new Promise((resolve) => req.on('continue', resolve));
    const closing = accounts.close();
    req.end(JSON.stringify({ username: 'bob', email: 'bob@example.com', password: PASSWORD }));
    const res = await response;
    assert.equal(res.status, 201, res.body);
    await closing;
    await assert.rejects(fetch(`${accounts.url}/healthz`));
  });

  it('log lines carry links with their codes redacted', () => {
    assert.equal(
      redactUrl('/-/verify-email?code=abc_DEF-123&email=a%40b.example'),
      '/-/verify-email?code=REDACTED&email=a%40b.example',
    );
    assert.equal(redactUrl('/password-reset?code=xyz'), '/password-reset?code=REDACTED');
  });
});
