import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { SiteConfig } from '@sitemail/site-config';
import { codeMonitorTriggered, Stream } from '../../test/events.ts';
import { emailKinds } from './emails.ts';
import { standingSuppression, standingSuppressionRules } from './policy.ts';
import { evolveRecipient, type Recipient } from './recipient.ts';
import { redecideAwaiting } from './redecide.ts';

describe('standingSuppression: the list and the opt-outs, at decision and at claim', () => {
  it('opt-outs stop only unsubscribable kinds; the list stops all but verification and set-password', () => {
    const table = Object.fromEntries(
      emailKinds.map((kind) => [
        kind,
        [
          standingSuppression(kind, { undeliverable: true, unsubscribed: false }) ?? 'sent',
          standingSuppression(kind, { undeliverable: false, unsubscribed: true }) ?? 'sent',
          standingSuppression(kind, { undeliverable: true, unsubscribed: true }) ?? 'sent',
          standingSuppression(kind, { undeliverable: false, unsubscribed: false }) ?? 'sent',
        ],
      ]),
    );
    const listed = ['address-undeliverable', 'sent', 'address-undeliverable', 'sent'];
    assert.deepEqual(table, {
      'email-verification': ['sent', 'sent', 'sent', 'sent'],
      'set-password': ['sent', 'sent', 'sent', 'sent'],
      'password-reset': listed,
      'password-changed': listed,
      'primary-email-changed': listed,
      'api-key-created': listed,
      'site-admin-changed': listed,
      invitation: listed,
      // the user's own choice is the reason given, even when the address bounced as well
      'code-monitor-triggered': ['address-undeliverable', 'unsubscribed', 'unsubscribed', 'sent'],
    });
  });

  it('the rows the claim joins are the function, case by case, and only the suppressing ones', () => {
    const rules = standingSuppressionRules();
    assert.equal(rules.length, 6 * 2 + 3);
    for (const r of rules) assert.equal(standingSuppression(r.kind, r), r.reason);
    const key = (r: { kind: string; undeliverable: boolean; unsubscribed: boolean }) =>
      `${r.kind}/${r.undeliverable}/${r.unsubscribed}`;
    assert.equal(new Set(rules.map(key)).size, rules.length, 'one row per case');
  });

  it('redecideAwaiting decides a released email with the list it is given', () => {
    const site: SiteConfig = {
      externalURL: 'https://sourcegraph.example.com',
      'email.address': 'from@example.com',
      'email.smtp': { authentication: 'none', host: 'smtp.example.com', port: 587, noVerifyTLS: false },
      'auth.providers': [{ type: 'builtin' }],
    };
    const s = new Stream();
    const carol: Recipient | undefined = evolveRecipient(
      undefined,
      s.created({ email: 'Carol@Example.com', verified: true }),
    );
    const monitor = codeMonitorTriggered(s.userId);
    assert.equal(redecideAwaiting(monitor, 0, carol, site, false).kind, 'send');
    const d = redecideAwaiting(monitor, 0, carol, site, false, new Set(), new Set(['carol@example.com']));
    assert.deepEqual(d, {
      kind: 'suppress',
      email: 'code-monitor-triggered',
      reason: 'address-undeliverable',
      userId: s.userId,
      address: 'Carol@Example.com',
    });
  });
});
