import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { SiteConfig } from '@sitemail/site-config';
import { testLinkKey } from '../../../test/events.ts';
import type { EmailMessage } from '../emails.ts';
import { issueUnsubscribeToken, unsubscribeURL } from '../unsubscribe-token.ts';
import { renderEmail } from './render.ts';

// an ampersand in the site's path: the HTML must carry it escaped, the text and header as is
const site: SiteConfig = {
  externalURL: 'https://example.com/a&b',
  'email.address': 'from@example.com',
  'auth.providers': [{ type: 'builtin' }],
};
const token = issueUnsubscribeToken(
  { userId: '0b6f2a1c-3d4e-4f5a-8b6c-7d8e9f0a1b2c', kind: 'code-monitor-triggered', issuedAt: new Date() },
  testLinkKey,
);
const url = unsubscribeURL(site.externalURL, token);
const monitor: EmailMessage = {
  kind: 'code-monitor-triggered',
  username: 'alice',
  monitorName: 'New uses of eval',
  query: 'eval(',
  resultCount: 2,
  resultsPath: '/code-monitoring/m1/results',
};
const apiKey: EmailMessage = {
  kind: 'api-key-created',
  username: 'alice',
  keyId: '6f7a8b9c-0d1e-4f2a-8b3c-4d5e6f7a8b9c',
  keyName: 'CI',
  at: '2026-11-25T10:00:00.000Z',
};

describe('the unsubscribe link and headers', () => {
  it('a code-monitoring email carries both RFC 8058 headers and the link in text and HTML', () => {
    const r = renderEmail(monitor, { site, linkTokenKeys: testLinkKey, unsubscribeURL: url });
    assert.equal(url, `https://example.com/a&b/-/unsubscribe/${token}`);
    assert.deepEqual(r.headers, {
      'List-Unsubscribe': `<${url}>`,
      'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click',
    });
    assert.ok(r.text.includes(`Stop code monitor notifications: ${url}\n`), r.text);
    assert.ok(r.html.includes(`href="https://example.com/a&amp;b/-/unsubscribe/${token}"`), r.html);
    assert.equal(r.html.includes('a&b/-/unsubscribe'), false);
  });

  it('a security email gets neither, even if handed a URL', () => {
    const r = renderEmail(apiKey, { site, linkTokenKeys: testLinkKey, unsubscribeURL: url });
    assert.equal(r.headers, undefined);
    assert.equal(r.text.includes('unsubscribe'), false);
    assert.equal(r.html.includes('unsubscribe'), false);
  });

  it('without a URL a code-monitoring email renders as before (no headers, no footer)', () => {
    const r = renderEmail(monitor, { site, linkTokenKeys: testLinkKey });
    assert.equal(r.headers, undefined);
    assert.equal(r.text.includes('Stop code monitor'), false);
  });
});
