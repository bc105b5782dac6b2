import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { FleetEvent } from '@sitemail/contracts';
import type { SiteConfig } from '@sitemail/site-config';
import { codeMonitorTriggered, Stream } from '../../test/events.ts';
import type { EmailKind } from './emails.ts';
import { decideNotifications, unsubscribableSendsOf } from './policy.ts';
import { evolveRecipient, type Recipient } from './recipient.ts';
import { redecideAwaiting } from './redecide.ts';

const site: SiteConfig = {
  externalURL: 'https://sourcegraph.example.com',
  'email.address': 'from@example.com',
  'email.smtp': { authentication: 'none', host: 'smtp.example.com', port: 587, noVerifyTLS: false },
  'auth.providers': [{ type: 'builtin' }],
};

/** Alice, verified primary alice@example.com. */
const s = new Stream();
let alice: Recipient | undefined;
for (const e of [s.created({ email: 'alice@example.com', verified: true })])
  alice = evolveRecipient(alice, e);
const monitor = codeMonitorTriggered(s.userId);
const apiKey = s.apiKeyCreated();
const reset = s.next('PasswordResetRequested', {
  email: 'alice@example.com',
  token: s.seal('reset-1', 'PasswordResetRequested'),
  expiresAt: new Date(Date.now() + 3_600_000).toISOString(),
});

const outcome = (event: FleetEvent, unsubscribed: EmailKind[], undeliverable: string[] = []) =>
  decideNotifications(event, alice, site, new Set(undeliverable), new Set(unsubscribed)).map((d) =>
    d.kind === 'send' ? `send to ${d.to}` : `${d.kind} ${d.reason} ${d.address ?? ''}`.trim(),
  );

describe('the policy with the kinds the recipient unsubscribed from', () => {
  it('a code-monitoring email to a user who unsubscribed is suppressed `unsubscribed`, naming the address', () => {
    assert.deepEqual(outcome(monitor, ['code-monitor-triggered']), [
      'suppress unsubscribed alice@example.com',
    ]);
  });

  it('is sent when the user did not unsubscribe (or unsubscribed from nothing)', () => {
    assert.deepEqual(outcome(monitor, []), ['send to alice@example.com']);
  });

  it('unsubscribing is reported before a bounce (the user chose it)', () => {
    assert.deepEqual(outcome(monitor, ['code-monitor-triggered'], ['alice@example.com']), [
      'suppress unsubscribed alice@example.com',
    ]);
  });

  it('security emails go out even if a row claims the user unsubscribed from them', () => {
    assert.deepEqual(outcome(apiKey, ['api-key-created', 'code-monitor-triggered']), [
      'send to alice@example.com',
    ]);
    assert.deepEqual(outcome(reset, ['password-reset']), ['send to alice@example.com']);
  });

  it('a deleted user stays `user-deleted`, with no address', () => {
    const gone = evolveRecipient(alice, s.next('UserDeleted', { deletedBy: 'self' }));
    const d = decideNotifications(monitor, gone, site, new Set(), new Set(['code-monitor-triggered']));
    assert.deepEqual(
      d.map((x) => (x.kind === 'suppress' ? [x.reason, x.address] : x.kind)),
      [['user-deleted', undefined]],
    );
  });

  it('an awaited code-monitoring email decided again for a user who unsubscribed meanwhile: suppressed for good', () => {
    const d = redecideAwaiting(monitor, 0, alice, site, false, new Set(['code-monitor-triggered']));
    assert.deepEqual(d.kind === 'suppress' ? [d.kind, d.reason, d.address] : d.kind, [
      'suppress',
      'unsubscribed',
      'alice@example.com',
    ]);
    assert.equal(redecideAwaiting(monitor, 0, alice, site, false).kind, 'send');
  });

  it('unsubscribableSendsOf: look the user up only when an opt-out-able email would be sent', () => {
    assert.equal(unsubscribableSendsOf(decideNotifications(monitor, alice, site)), true);
    assert.equal(unsubscribableSendsOf(decideNotifications(apiKey, alice, site)), false);
    assert.equal(unsubscribableSendsOf(decideNotifications(monitor, undefined, site)), false);
  });
});
