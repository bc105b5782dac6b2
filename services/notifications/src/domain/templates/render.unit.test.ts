import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseLinkTokenKey } from '@sitemail/contracts';
import type { SiteConfig } from '@sitemail/site-config';
import { codeMonitorTriggered, Stream, testLinkKey } from '../../../test/events.ts';
import { type EmailMessage, emailKinds } from '../emails.ts';
import { decideNotifications } from '../policy.ts';
import { evolveRecipient } from '../recipient.ts';
import { RenderError, renderEmail } from './render.ts';

const site: SiteConfig = {
  externalURL: 'https://sourcegraph.example.com/sg/',
  'email.senderName': 'Example Instance',
  'email.address': 'from@example.com',
  'email.smtp': { authentication: 'none', host: 'smtp.example.com', port: 587, noVerifyTLS: false },
  'auth.providers': [{ type: 'builtin' }],
};
const ctx = { site, linkTokenKeys: testLinkKey };

const link = (
  s: Stream,
  eventType:
    | 'EmailVerificationRequested'
    | 'PasswordSetLinkRequested'
    | 'PasswordResetRequested'
    | 'UserInvited',
  token: string,
) => ({
  token: s.seal(token, eventType),
  userId: s.userId,
  eventType,
  expiresAt: '2026-11-26T10:00:00.000Z',
});

function oneOfEach(): EmailMessage[] {
  const s = new Stream();
  const at = '2026-11-25T10:00:00.000Z';
  return [
    {
      kind: 'email-verification',
      username: 'alice',
      email: 'a@example.com',
      link: link(s, 'EmailVerificationRequested', 'v-tok'),
    },
    {
      kind: 'set-password',
      username: 'bob',
      email: 'b@example.com',
      link: link(s, 'PasswordSetLinkRequested', 's-tok'),
    },
    {
      kind: 'password-reset',
      username: 'alice',
      email: 'a@example.com',
      link: link(s, 'PasswordResetRequested', 'r-tok'),
    },
    { kind: 'password-changed', username: 'alice', via: 'user', at },
    {
      kind: 'primary-email-changed',
      username: 'alice',
      email: 'n@example.com',
      previousEmail: 'a@example.com',
      at,
    },
    {
      kind: 'api-key-created',
      username: 'alice',
      keyId: '9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c61',
      keyName: 'CI',
      at,
    },
    { kind: 'site-admin-changed', username: 'alice', siteAdmin: true, at },
    {
      kind: 'invitation',
      email: 'c@example.org',
      inviterUsername: 'alice',
      organization: 'acme',
      link: link(s, 'UserInvited', 'i-tok'),
    },
    {
      kind: 'code-monitor-triggered',
      username: 'alice',
      monitorName: 'evals',
      query: 'eval(',
      resultCount: 2,
      resultsPath: '/code-monitoring/m1/results',
    },
  ];
}

describe('renderEmail', () => {
  it('renders every email kind with a subject, plain text and HTML naming the site', () => {
    const messages = oneOfEach();
    assert.deepEqual(
      messages.map((m) => m.kind),
      [...emailKinds],
    );
    for (const m of messages) {
      const r = renderEmail(m, ctx);
      assert.ok(r.subject.length > 0 && !/[\r\n]/.test(r.subject), m.kind);
      assert.match(r.subject, /Example Instance/, m.kind);
      assert.match(r.text, /Example Instance/, m.kind);
      assert.match(r.html, /^<!DOCTYPE html>/, m.kind);
    }
  });

  it('builds links from externalURL (keeping its path) with the unsealed token', () => {
    const [verify, setPassword, reset, , , , , invitation, monitor] = oneOfEach().map((m) =>
      renderEmail(m, ctx),
    );
    assert.match(
      verify!.text,
      /https:\/\/sourcegraph\.example\.com\/sg\/-\/verify-email\?email=a%40example\.com&code=v-tok/,
    );
    assert.match(
      verify!.html,
      /href="https:\/\/sourcegraph\.example\.com\/sg\/-\/verify-email\?email=a%40example\.com&amp;code=v-tok"/,
    );
    assert.match(setPassword!.text, /https:\/\/sourcegraph\.example\.com\/sg\/password-reset\?code=s-tok/);
    assert.match(reset!.text, /\/sg\/password-reset\?code=r-tok/);
    assert.match(invitation!.text, /\/sg\/-\/invitation\?email=[^&\s]+&code=i-tok/);
    assert.match(monitor!.text, /https:\/\/sourcegraph\.example\.com\/sg\/code-monitoring\/m1\/results/);
    assert.match(verify!.subject, /^Verify your email on Example Instance$/);
  });

  it('escapes user-provided text in HTML: a monitor name and a username with <script>', () => {
    const owner = new Stream();
    const recipient = evolveRecipient(
      undefined,
      owner.created({ email: 'a@example.com', verified: true, username: '<script>alert(1)</script>' }),
    );
    const [decision] = decideNotifications(
      codeMonitorTriggered(owner.userId, '<script>steal()</script> & "x"'),
      recipient,
      site,
    );
    assert.ok(decision?.kind === 'send');
    const r = renderEmail(decision.message, ctx);
    assert.doesNotMatch(r.html, /<script>/);
    assert.match(r.html, /&lt;script&gt;steal\(\)&lt;\/script&gt; &amp; &quot;x&quot;/);
    assert.match(r.html, /Hi &lt;script&gt;alert\(1\)&lt;\/script&gt;,/);
    // Plain text carries the text as written: it is not HTML.
    assert.match(r.text, /"<script>steal\(\)<\/script> & "x""/);
  });

  it('keeps a subject on one line whatever the user-provided text', () => {
    const m: EmailMessage = {
      ...(oneOfEach()[8] as Extract<EmailMessage, { kind: 'code-monitor-triggered' }>),
      monitorName: 'a\r\nBcc: x@evil.example',
    };
    assert.doesNotMatch(renderEmail(m, ctx).subject, /[\r\n]/);
  });

  it('every kind: CR/LF, NUL and bidi controls in user text reach no header and split no line of the text', () => {
    const evil = 'X\r\nInjected: yes\u0000\u202e';
    const userFields = [
      'username',
      'keyName',
      'organization',
      'inviterUsername',
      'inviteeUsername',
      'monitorName',
      'query',
    ];
    for (const m of oneOfEach()) {
      const tainted = { ...m } as Record<string, unknown>;
      for (const f of userFields) if (f in tainted || f === 'inviteeUsername') tainted[f] = evil;
      const r = renderEmail(tainted as unknown as EmailMessage, ctx);
      // biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
      assert.doesNotMatch(r.subject, /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/, m.kind);
      for (const l of r.text.split('\n')) {
        assert.ok(!l.startsWith('Injected'), `${m.kind}: a line starts with user text: ${JSON.stringify(l)}`);
        // biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
        assert.doesNotMatch(l, /[\r\u0000\u202e]/, m.kind);
      }
      assert.ok(r.text.includes('X Injected: yes'), `${m.kind} keeps the user text, made one line`);
    }
  });

  it('subjects: user parts bounded (cut with …), the product wording kept', () => {
    const long = 'A'.repeat(255);
    const all = oneOfEach();
    const invitation = { ...(all[7] as Extract<EmailMessage, { kind: 'invitation' }>) };
    const subject = renderEmail(
      { ...invitation, organization: long, inviterUsername: 'mallory' },
      ctx,
    ).subject;
    assert.equal(subject, `mallory invited you to join "${'A'.repeat(63)}…" on Example Instance`);
    const noOrg = { ...invitation } as Record<string, unknown>;
    delete noOrg.organization;
    assert.equal(
      renderEmail(noOrg as unknown as EmailMessage, ctx).subject,
      'alice invited you to join Example Instance',
    );
    const monitor = { ...(all[8] as Extract<EmailMessage, { kind: 'code-monitor-triggered' }>) };
    assert.equal(
      renderEmail({ ...monitor, monitorName: long }, ctx).subject,
      `[${'A'.repeat(63)}…] 2 new results on Example Instance`,
    );
    // in the body the name is kept up to its full 255 characters
    const key = { ...(all[5] as Extract<EmailMessage, { kind: 'api-key-created' }>), keyName: long };
    assert.ok(renderEmail(key, ctx).text.includes(`"${long}"`));
  });

  it('fails with a RenderError that does not contain the token when the link cannot be opened', () => {
    const other = parseLinkTokenKey(`ktest:${Buffer.alloc(32, 9).toString('base64')}`);
    const verify = oneOfEach()[0]!;
    assert.throws(
      () => renderEmail(verify, { site, linkTokenKeys: other }),
      (err: unknown) => err instanceof RenderError && !err.message.includes('v-tok'),
    );
    const moved = { ...(verify as Extract<EmailMessage, { kind: 'email-verification' }>) };
    moved.link = { ...moved.link, userId: new Stream().userId };
    assert.throws(() => renderEmail(moved, ctx), RenderError);
  });
});
