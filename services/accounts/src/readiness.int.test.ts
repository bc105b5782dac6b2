import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type Bus, inProcessBus } from '@sitemail/bus';
import { generateLinkTokenKey, parseLinkTokenKey } from '@sitemail/contracts';
import { staticSiteConfig } from '@sitemail/site-config';
import { type DatabaseOutage, databaseWithOutage, testDatabaseKind } from '@sitemail/testkit';
import { type RunningAccounts, startAccounts } from './main.ts';
import { noSmtpSite } from './testing/harness.ts';

interface Readiness {
  status: string;
  checks: Record<string, { ok: boolean; reason?: string }>;
}

/** `/readyz` follows the database: 503 naming it while it is away, 200 once it answers again. */
describe(`accounts readiness when the database goes away (${testDatabaseKind()})`, () => {
  let outage: DatabaseOutage;
  let bus: Bus;
  let accounts: RunningAccounts;
  before(async () => {
    outage = await databaseWithOutage('accounts_ready');
    bus = inProcessBus();
    accounts = await startAccounts({
      port: 0,
      db: outage.db,
      bus,
      siteConfig: staticSiteConfig(noSmtpSite),
      linkTokenKey: parseLinkTokenKey(generateLinkTokenKey('ready-test')),
    });
  });
  after(async () => {
    await outage?.up();
    await accounts?.close();
    await bus?.close();
    await outage?.close();
  });

  const readyz = async (): Promise<{ status: number; body: Readiness }> => {
    const res = await fetch(`${accounts.url}/readyz`);
    return { status: res.status, body: (await res.json()) as Readiness };
  };
  const until = async (status: number, ms = 15_000) => {
    const deadline = Date.now() + ms;
    for (;;) {
      const r = await readyz();
      if (r.status === status) return r;
      if (Date.now() > deadline) throw new Error(`/readyz still ${r.status}: ${JSON.stringify(r.body)}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  };

  it('goes 503 naming the database when it is away, 200 when it is back; /healthz stays 200', async () => {
    const ready = await until(200);
    assert.equal(ready.body.checks.database?.ok, true);

    await outage.down();
    const down = await until(503);
    assert.equal(down.body.status, 'not-ready');
    assert.equal(down.body.checks.database?.ok, false, `${outage.how}: ${JSON.stringify(down.body)}`);
    assert.match(down.body.checks.database?.reason ?? '', /\w/);
    // The reason names no connection string, host or password.
    assert.doesNotMatch(JSON.stringify(down.body), /postgres:\/\/|127\.0\.0\.1|password/i);
    assert.equal((await fetch(`${accounts.url}/healthz`)).status, 200, 'alive while not ready');

    await outage.up();
    const back = await until(200);
    assert.equal(back.body.checks.database?.ok, true);
  });
});
