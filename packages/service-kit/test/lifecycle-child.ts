/** A process under runUntilSignal, for lifecycle.int.test.ts: prints what it opens and closes. */
import { runUntilSignal } from '../src/lifecycle.ts';

const say = (line: string) => process.stdout.write(`${line}\n`);
const logger = {
  info: (_o: unknown, m?: string) => say(`log ${m ?? _o}`),
  warn: say,
  error: (_o: unknown, m?: string) => say(`error ${m}`),
};
const mode = process.argv[2] ?? 'ok';

await runUntilSignal({
  name: 'child',
  logger,
  graceMs: 300,
  async start(defer) {
    for (const part of ['site-config', 'db', 'bus', 'http']) {
      if (mode === 'fail-start' && part === 'bus') throw new Error('bus: broker unreachable');
      // Stands for a listening server: it keeps the process alive until closed.
      const alive = part === 'http' ? setInterval(() => {}, 60_000) : undefined;
      defer(part, async () => {
        clearInterval(alive);
        if (mode === 'hang' && part === 'http') await new Promise(() => {});
        say(`closed ${part}`);
      });
    }
    say('ready');
  },
});
