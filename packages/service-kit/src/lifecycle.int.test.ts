import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';

const child = join(import.meta.dirname, '../test/lifecycle-child.ts');

function run(mode: string, signal?: NodeJS.Signals) {
  const proc = spawn(process.execPath, ['--import', 'tsx', child, mode], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  let signalled = false;
  proc.stdout.on('data', (d) => {
    stdout += d;
    if (signal && !signalled && stdout.includes('ready\n')) {
      signalled = true;
      proc.kill(signal);
    }
  });
  proc.stderr.on('data', (d) => {
    stderr += d;
  });
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
    proc.on('close', (code) => resolve({ code, stdout, stderr })),
  );
}

describe('runUntilSignal', () => {
  it('on SIGTERM closes in reverse order of opening (http, bus, db, site config) and exits 0', async () => {
    const { code, stdout } = await run('ok', 'SIGTERM');
    assert.equal(code, 0, stdout);
    const closed = stdout.split('\n').filter((l) => l.startsWith('closed '));
    assert.deepEqual(closed, ['closed http', 'closed bus', 'closed db', 'closed site-config']);
    assert.match(stdout, /log child: SIGTERM, shutting down/);
  });
  it('exits 1 when closing outlasts the grace period', async () => {
    const { code, stdout } = await run('hang', 'SIGINT');
    assert.equal(code, 1);
    assert.match(stdout, /shutdown took longer than 300 ms/);
  });
  it('a start failure closes what was opened and exits 1 with one line', async () => {
    const { code, stdout, stderr } = await run('fail-start');
    assert.equal(code, 1);
    assert.deepEqual(
      stdout.split('\n').filter((l) => l.startsWith('closed ')),
      ['closed db', 'closed site-config'],
    );
    assert.equal(stderr, 'child failed to start: bus: broker unreachable\n');
  });
});
