/**
 * What the mailer's guards cost: emails/s through createMailer against raw nodemailer with the same
 * pool size, both to one discarding SMTP sink in a child process (so the sink's CPU does not count
 * against the client), plus one new connection per email (no pool) as the baseline of the
 * model of Sourcegraph's mailer.
 *
 *   npx tsx services/notifications/src/smtp/mailer.bench.ts [emails=2000] [poolSize=5]
 *
 * Prints figures; asserts nothing (performance goes in benchmarks, not in tests).
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { SiteConfig } from '@sitemail/site-config';
import nodemailer from 'nodemailer';
import { SMTPServer } from 'smtp-server';
import { createMailer } from './mailer.ts';

if (process.argv[2] === '--sink') {
  const sink = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    disableReverseLookup: true,
    onData(stream, _session, callback) {
      stream.on('data', () => {});
      stream.on('end', () => callback());
    },
  });
  sink.listen(0, '127.0.0.1', () => {
    const address = sink.server.address();
    process.send?.({ port: typeof address === 'object' && address ? address.port : 0 });
  });
} else {
  const total = Number(process.argv[2] ?? 2000);
  const poolSize = Number(process.argv[3] ?? 5);
  const child = fork(fileURLToPath(import.meta.url), ['--sink'], { execArgv: ['--import', 'tsx'] });
  const port = await new Promise<number>((resolve) =>
    child.once('message', (m: { port: number }) => resolve(m.port)),
  );
  const message = (i: number) => ({
    to: `rcpt${i}@b.example`,
    subject: `bench ${i}`,
    text: 'x'.repeat(1000),
    html: `<p>${'x'.repeat(1000)}</p>`,
  });
  const run = async (send: (i: number) => Promise<unknown>) => {
    const started = performance.now();
    let next = 0;
    // as many sends in flight as the pool has connections, like the delivery worker
    await Promise.all(
      Array.from({ length: poolSize }, async () => {
        while (next < total) await send(next++);
      }),
    );
    return total / ((performance.now() - started) / 1000);
  };

  const site: SiteConfig = {
    externalURL: 'https://sourcegraph.example.com',
    'email.address': 'from@example.com',
    'email.smtp': { authentication: 'none', host: '127.0.0.1', port, noVerifyTLS: false },
    'auth.providers': [{ type: 'builtin' }],
  };
  // Two rounds, alternating, so JIT warm-up and a noisy shared machine do not favour one side;
  // the better round of each counts.
  let mailerRate = 0;
  let rawRate = 0;
  for (let round = 0; round < 2; round++) {
    const mailer = createMailer(() => site, { poolSize });
    await mailer.send(message(-1)); // warm-up: the first connection pays smtp-server's 100 ms greeting delay
    mailerRate = Math.max(mailerRate, await run((i) => mailer.send(message(i))));
    await mailer.close();

    const raw = nodemailer.createTransport({ pool: true, maxConnections: poolSize, host: '127.0.0.1', port });
    await raw.sendMail({ from: 'from@example.com', ...message(-1) });
    rawRate = Math.max(rawRate, await run((i) => raw.sendMail({ from: 'from@example.com', ...message(i) })));
    raw.close();
  }

  // one connection per email pays the 100 ms greeting delay each time; a smaller sample suffices
  const single = nodemailer.createTransport({ host: '127.0.0.1', port });
  const singleTotal = Math.min(total, 200);
  const singleStarted = performance.now();
  let n = 0;
  await Promise.all(
    Array.from({ length: poolSize }, async () => {
      while (n < singleTotal) await single.sendMail({ from: 'from@example.com', ...message(n++) });
    }),
  );
  const singleRate = singleTotal / ((performance.now() - singleStarted) / 1000);

  console.log(`emails: ${total}, pool size: ${poolSize}, 1 KB text + 1 KB html, sink in a child process`);
  console.log(`createMailer (guards, tracker)  ${mailerRate.toFixed(0)} emails/s`);
  console.log(`raw nodemailer pool              ${rawRate.toFixed(0)} emails/s`);
  console.log(`one connection per email         ${singleRate.toFixed(0)} emails/s (${singleTotal} emails)`);
  console.log(`mailer / raw pool                ${(mailerRate / rawRate).toFixed(2)}`);
  console.log(`mailer / one-per-email           ${(mailerRate / singleRate).toFixed(1)}x`);
  console.log(`peak RSS (client)                ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MB`);
  child.kill();
}
