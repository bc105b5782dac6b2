import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { createTransport } from 'nodemailer';
import { type ReceivedEmailSummary, startMailSink } from './index.ts';

const root = mkdtempSync(join(tmpdir(), 'mail-sink-'));
after(() => rmSync(root, { recursive: true, force: true }));

describe('mail sink', () => {
  it('reports each email to a logger when given one instead of a line function', async () => {
    const dir = join(root, 'logged');
    const infos: { obj: object; msg: string | undefined }[] = [];
    const sink = await startMailSink({
      port: 0,
      dir,
      logger: { info: (obj, msg) => infos.push({ obj, msg }) },
    });
    try {
      const transport = createTransport({ host: '127.0.0.1', port: sink.port, secure: false });
      await transport.sendMail({ from: 'a@example.com', to: 'b@example.com', subject: 'Hello', text: 'hi' });
      transport.close();
      assert.equal(infos.length, 1);
      assert.deepEqual(infos[0]!.obj, { component: 'mail-sink' });
      assert.match(infos[0]!.msg ?? '', /^mail-sink: received "Hello" for b@example\.com -> /);
    } finally {
      await sink.close();
    }
  });

  it('keeps a real email sent with nodemailer as .eml with a .json summary, and logs one line', async () => {
    const dir = join(root, 'kept');
    const lines: string[] = [];
    const sink = await startMailSink({ port: 0, dir, log: (l) => lines.push(l) });
    try {
      const transport = createTransport({ host: '127.0.0.1', port: sink.port, secure: false });
      const info = await transport.sendMail({
        from: '"Sitemail (development)" <noreply@sitemail.localhost>',
        to: 'alice@example.com',
        bcc: 'audit@example.com',
        subject: 'Verify your email address',
        text: 'Follow http://localhost:3001/-/verify-email?code=abc',
        date: new Date('2026-11-25T10:00:00.000Z'),
      });
      transport.close();

      const files = readdirSync(dir).sort();
      assert.equal(files.length, 2, files.join(', '));
      const json = files.find((f) => f.endsWith('.json'));
      const eml = files.find((f) => f.endsWith('.eml'));
      assert.match(eml ?? '', /^\d{4}-\d\d-\d\dT[\d-]+Z-1\.eml$/);
      assert.equal(json, eml?.replace(/\.eml$/, '.json'));

      const summary = JSON.parse(readFileSync(join(dir, json ?? ''), 'utf8')) as ReceivedEmailSummary;
      assert.deepEqual(summary.envelope, {
        from: 'noreply@sitemail.localhost',
        to: ['alice@example.com', 'audit@example.com'],
      });
      assert.equal(summary.subject, 'Verify your email address');
      assert.equal(summary.date, '2026-11-25T10:00:00.000Z');
      assert.equal(summary.messageId, info.messageId);
      assert.equal(summary.file, eml);
      assert.equal(summary.text?.trim(), 'Follow http://localhost:3001/-/verify-email?code=abc');
      assert.deepEqual(summary.links, ['http://localhost:3001/-/verify-email?code=abc']);

      const raw = readFileSync(join(dir, eml ?? ''), 'utf8');
      assert.match(raw, /^Subject: Verify your email address$/m);
      assert.match(raw, /verify-email\?code=abc/);
      assert.equal(summary.size, Buffer.byteLength(raw));

      assert.deepEqual(lines, [
        `mail-sink: received "Verify your email address" for alice@example.com, audit@example.com -> ${join(dir, eml ?? '')}`,
      ]);
      assert.deepEqual(sink.stats(), { received: 1, bytes: summary.size });
    } finally {
      await sink.close();
    }
  });

  it('accepts PLAIN credentials (loopback) and numbers emails in arrival order', async () => {
    const dir = join(root, 'auth');
    const sink = await startMailSink({ port: 0, dir, log: () => {} });
    try {
      const transport = createTransport({
        host: '127.0.0.1',
        port: sink.port,
        auth: { user: 'u', pass: 'p' },
        authMethod: 'PLAIN',
      });
      for (const subject of ['one', 'two', 'three']) {
        await transport.sendMail({ from: 'a@b.example', to: 'c@d.example', subject, text: subject });
      }
      transport.close();
      const summaries = readdirSync(dir)
        .filter((f) => f.endsWith('.json'))
        .map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')) as ReceivedEmailSummary)
        .sort((a, b) => Number(/-(\d+)\.eml$/.exec(a.file)?.[1]) - Number(/-(\d+)\.eml$/.exec(b.file)?.[1]));
      assert.deepEqual(
        summaries.map((s) => s.subject),
        ['one', 'two', 'three'],
      );
    } finally {
      await sink.close();
    }
  });

  it('with discard only counts, writing nothing', async () => {
    const dir = join(root, 'discard');
    const sink = await startMailSink({
      port: 0,
      dir,
      discard: true,
      log: () => assert.fail('discard logs nothing'),
    });
    try {
      const transport = createTransport({
        host: '127.0.0.1',
        port: sink.port,
        pool: true,
        maxConnections: 2,
      });
      await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          transport.sendMail({ from: 'a@b.example', to: 'c@d.example', subject: `n${i}`, text: 'x' }),
        ),
      );
      transport.close();
      assert.equal(sink.stats().received, 10);
      assert.ok(sink.stats().bytes > 10 * 100);
      assert.equal(existsSync(dir), false, 'discard creates no directory and writes no file');
    } finally {
      await sink.close();
    }
  });

  it('runs as a CLI that prints its port and exits cleanly on SIGTERM', async () => {
    const dir = join(root, 'cli');
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', join(import.meta.dirname, 'cli.ts'), '--port', '0', '--dir', dir],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    child.stdout.setEncoding('utf8');
    const port = await new Promise<number>((resolve, reject) => {
      child.stdout.on('data', (chunk: string) => {
        out += chunk;
        const m = /mail-sink listening on (\d+)/.exec(out);
        if (m) resolve(Number(m[1]));
      });
      child.once('exit', (code) =>
        reject(new Error(`mail-sink exited with ${code} before listening: ${out}`)),
      );
    });
    const transport = createTransport({ host: '127.0.0.1', port });
    await transport.sendMail({ from: 'a@b.example', to: 'c@d.example', subject: 'via cli', text: 'x' });
    transport.close();
    const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    assert.equal(await exit, 0);
    assert.match(out, /mail-sink: received "via cli" for c@d\.example -> /);
    assert.match(out, /stopped after receiving 1 emails/);
    assert.equal(readdirSync(dir).filter((f) => f.endsWith('.eml')).length, 1);
  });
});
