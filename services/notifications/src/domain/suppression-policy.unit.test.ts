import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { FleetEvent } from '@sitemail/contracts';
import type { SiteConfig } from '@sitemail/site-config';
import { codeMonitorTriggered, Stream } from '../../test/events.ts';
import { decideNotifications, sendAddressesOf, triedDespiteSuppression } from './policy.ts';
import { evolveRecipient, type Recipient } from './recipient.ts';

const site: SiteConfig = {
  externalURL: 'https://sourcegraph.example.com',
  'email.address': 'from@example.com',
  'email.smtp': { authentication: 'none', host: 'smtp.example.com', port: 587, noVerifyTLS: false },
  'auth.providers': [{ type: 'builtin' }],
};

/** A user whose verified primary is Bounced@Example.com (mixed case: the list is case-blind), with New@Example.com to verify. */
const s = new Stream();
let alice: Recipient | undefined;
for (const e of [
  s.created({ email: 'Bounced@Example.com', verified: true }),
  s.next('EmailAdded', { email: 'New@Example.com' }),
])
  alice = evolveRecipient(alice, e);

const setLink = s.next('PasswordSetLinkRequested', {
  email: 'Bounced@Example.com',
  token: s.seal('set-1', 'PasswordSetLinkRequested'),
  expiresAt: new Date(Date.now() + 3_600_000).toISOString(),
});
const reset = s.next('PasswordResetRequested', {
  email: 'Bounced@Example.com',
  token: s.seal('reset-1', 'PasswordResetRequested'),
  expiresAt: new Date(Date.now() + 3_600_000).toISOString(),
});

const outcome = (event: FleetEvent, undeliverable: Set<string>) =>
  decideNotifications(event, alice, site, undeliverable).map((d) =>
    d.kind === 'send' ? `send to ${d.to}` : `${d.kind} ${d.reason} ${d.address ?? ''}`.trim(),
  );

const listed = new Set(['bounced@example.com']);
const other = new Set(['someone-else@example.com']);

describe('decideNotifications with the suppression list', () => {
  const table: [string, FleetEvent, Set<string>, string[]][] = [
    [
      'API key created, address listed',
      s.apiKeyCreated(),
      listed,
      ['suppress address-undeliverable Bounced@Example.com'],
    ],
    ['API key created, another address listed', s.apiKeyCreated(), other, ['send to Bounced@Example.com']],
    ['API key created, list empty', s.apiKeyCreated(), new Set(), ['send to Bounced@Example.com']],
    [
      'code monitor, address listed',
      codeMonitorTriggered(s.userId),
      listed,
      ['suppress address-undeliverable Bounced@Example.com'],
    ],
    ['password reset, address listed', reset, listed, ['suppress address-undeliverable Bounced@Example.com']],
    [
      'verification, address listed: still tried',
      s.verificationRequested('New@Example.com'),
      new Set(['new@example.com']),
      ['send to New@Example.com'],
    ],
    ['set-password link, address listed: still tried', setLink, listed, ['send to Bounced@Example.com']],
  ];
  for (const [name, event, list, expected] of table) {
    it(name, () => assert.deepEqual(outcome(event, list), expected));
  }

  it('tries only the emails that prove the address despite the list', () => {
    assert.deepEqual([...triedDespiteSuppression].sort(), ['email-verification', 'set-password']);
  });

  it('a deleted user is suppressed user-deleted, naming no address, whatever the list says', () => {
    const gone = evolveRecipient(alice, s.next('UserDeleted', {} as never));
    const ds = decideNotifications(s.apiKeyCreated(), gone, site, listed);
    assert.ok(
      ds.every((d) => d.kind === 'suppress' && d.reason === 'user-deleted' && d.address === undefined),
    );
  });

  it('names the addresses to look up, lower-cased and once', () => {
    const ds = decideNotifications(s.apiKeyCreated(), alice, site);
    assert.deepEqual(sendAddressesOf([...ds, ...ds]), ['bounced@example.com']);
    assert.deepEqual(sendAddressesOf(decideNotifications(s.verified('x@example.com'), alice, site)), []);
  });
});
