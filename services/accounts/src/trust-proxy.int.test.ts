import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type Bus, inProcessBus } from '@sitemail/bus';
import { generateLinkTokenKey } from '@sitemail/contracts';
import { readServiceEnv } from '@sitemail/service-kit';
import { staticSiteConfig } from '@sitemail/site-config';
import { type TestDatabase, testDatabase, testDatabaseKind } from '@sitemail/testkit';
import { type RunningAccounts, startAccounts } from './main.ts';
import { smtpSite } from './testing/harness.ts';

/**
 * Issue 9 item 6: the per-client rate limits key on the client's address. Behind a reverse proxy
 * (TRUST_PROXY set, read by the service kit's environment reader as server.ts does) that is the
 * address the proxy reports; without it a forged X-Forwarded-For must not buy a fresh bucket.
 */
describe(`TRUST_PROXY and the per-client rate limits (${testDatabaseKind()})`, () => {
  let db: TestDatabase;
  let bus: Bus;
  const running: RunningAccounts[] = [];
  const start = async (env: Record<string, string>) => {
    const { trustProxy, linkTokenKey } = readServiceEnv(
      { ...env, LINK_TOKEN_KEY: generateLinkTokenKey('proxy-test') },
      { root: '/nonexistent' },
    );
    const accounts = await startAccounts({
      port: 0,
      db,
      bus,
      siteConfig: staticSiteConfig(smtpSite),
      linkTokenKey,
      trustProxy,
      rateLimits: { emailRequests: { max: 2, timeWindow: '1 minute' } },
    });
    running.push(accounts);
    return accounts;
  };
  before(async () => {
    db = await testDatabase('accounts_proxy');
    bus = inProcessBus();
  });
  after(async () => {
    for (const r of running) await r.close();
    await bus.close();
    await db.close();
  });

  const resetRequest = (url: string, forwardedFor: string) =>
    fetch(`${url}/password-reset-requests`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-forwarded-for': forwardedFor },
      body: JSON.stringify({ email: 'nobody@example.com' }),
    }).then((r) => r.status);

  it('behind a trusted proxy, each client has its own bucket', async () => {
    const { url } = await start({ TRUST_PROXY: '127.0.0.1' });
    assert.deepEqual(
      [await resetRequest(url, '203.0.113.1'), await resetRequest(url, '203.0.113.1')],
      [202, 202],
    );
    assert.equal(await resetRequest(url, '203.0.113.1'), 429, 'that client is limited');
    assert.equal(await resetRequest(url, '203.0.113.2'), 202, 'another client behind the proxy is not');
  });

  it('without TRUST_PROXY, a forged X-Forwarded-For does not split the bucket', async () => {
    const { url } = await start({});
    assert.equal(await resetRequest(url, '203.0.113.1'), 202);
    assert.equal(await resetRequest(url, '203.0.113.2'), 202);
    assert.equal(await resetRequest(url, '203.0.113.3'), 429);
  });
});
