import { escapeHtml } from '@sitemail/service-kit';
import { type SiteConfig, senderName } from '@sitemail/site-config';
import { userText } from './user-text.ts';

/** The test email: the test ID in subject and body, so the admin can match what arrives. */
export function renderTestEmail(config: SiteConfig, to: string, testId: string, now: Date) {
  // the sender name is the admin's (unsaved ones are only checked for line breaks)
  const sender = userText(senderName(config), 200);
  const subject = `TEST: email sent from ${sender} [${testId}]`;
  const lines = [
    `This is a test email from ${sender} (${config.externalURL}).`,
    'A site admin sent it to check the email (SMTP) settings. If you received it, sending email works.',
    '',
    `Test ID: ${testId}`,
    `Sent at: ${now.toISOString()}`,
  ];
  const html = [
    `<p>This is a test email from ${escapeHtml(sender)} (${escapeHtml(config.externalURL)}).</p>`,
    '<p>A site admin sent it to check the email (SMTP) settings. If you received it, sending email works.</p>',
    `<p>Test ID: <strong>${escapeHtml(testId)}</strong><br>Sent at: ${escapeHtml(now.toISOString())}</p>`,
  ].join('\n');
  return { to, subject, text: `${lines.join('\n')}\n`, html, headers: { 'X-Sitemail-Test-Id': testId } };
}
