import { spawn } from 'node:child_process';
import { createMailer } from '../../src/smtp/index.ts';

const child = spawn(
  process.execPath,
  ['--import', 'tsx', 'packages/mail-sink/src/cli.ts', '--port', '0', '--discard'],
  { cwd: '/work/main', stdio: ['ignore', 'pipe', 'inherit'] },
);
const port = await new Promise<number>((res) => {
  let o = '';
  child.stdout!.on('data', (c) => {
    o += c;
    const m = /listening on (\d+)/.exec(o);
    if (m) res(Number(m[1]));
  });
});
const site = {
  externalURL: 'https://x.example',
  'email.address': 'from@example.com',
  'email.smtp': { authentication: 'none' as const, host: '127.0.0.1', port, noVerifyTLS: false },
  'auth.providers': [],
};
const N = 3000;
for (const conc of [5, 5000]) {
  const mailer = createMailer(() => site, { poolSize: 5 });
  const t = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(conc, N) }, async () => {
      while (next < N) {
        next++;
        await mailer.send({
          to: 'a@example.com',
          subject: 's',
          text: 'hello '.repeat(100),
          html: '<p>hi</p>'.repeat(50),
        });
      }
    }),
  );
  console.log(`createMailer, ${conc} in flight: ${(N / ((performance.now() - t) / 1000)).toFixed(0)}/s`);
  await mailer.close();
}
child.kill();
