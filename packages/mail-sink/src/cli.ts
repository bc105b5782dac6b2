/**
 * `tsx packages/mail-sink/src/cli.ts --port 2525 --dir .data/mail [--discard] [--host 127.0.0.1]`
 * Prints `mail-sink listening on <port>` once ready (benchmarks and scripts wait for that line),
 * and on SIGTERM / SIGINT closes, prints what it received, and exits 0.
 */
import { parseArgs } from 'node:util';
import { startMailSink } from './index.ts';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '2525' },
    host: { type: 'string', default: '127.0.0.1' },
    dir: { type: 'string', default: '.data/mail' },
    discard: { type: 'boolean', default: false },
  },
});

const port = Number(values.port);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`mail-sink: --port must be an integer from 0 to 65535, not ${JSON.stringify(values.port)}`);
  process.exit(2);
}

const sink = await startMailSink({
  port,
  host: values.host,
  dir: values.dir,
  discard: values.discard,
  log: (line) => console.log(line),
});
console.log(`mail-sink listening on ${sink.port}`);

let stopping = false;
const stop = async (signal: string) => {
  if (stopping) return;
  stopping = true;
  await sink.close();
  const { received, bytes } = sink.stats();
  console.log(`mail-sink: ${signal}: stopped after receiving ${received} emails (${bytes} bytes)`);
  process.exit(0);
};
process.on('SIGTERM', () => void stop('SIGTERM'));
process.on('SIGINT', () => void stop('SIGINT'));
