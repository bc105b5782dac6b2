/**
 * The production image without Docker: the runtime stage's folder is laid out by the script the
 * Dockerfile runs (scripts/runtime-files.mjs, same file list, same `npm ci --omit=dev …`) in a
 * temp folder outside the repo, so nothing resolves into the repo's full node_modules. The test
 * checks what is (not) in it, then starts each service with its target's CMD, ENV and WORKDIR
 * from the Dockerfile, on plain node, and sends one sign-up's verification email through both —
 * over Kafka (the mock cluster), Postgres (DATABASE_URL) or PGlite, to a real SMTP server.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { generateLinkTokenKey, topics } from '@sitemail/contracts';
import { openDatabase } from '@sitemail/db';
import { startSmtpServer, type TestKafka, type TestSmtpServer, testKafka } from '@sitemail/testkit';
import { assembleRuntime, runtimeInstall, serviceEntry } from '../../scripts/runtime-files.mjs';
import { freePort, REPO_ROOT } from '../e2e/processes.ts';
import { parseDockerfile, type TargetImage, targetImage } from './dockerfile.ts';

const services = ['accounts', 'notifications'] as const;
type Service = (typeof services)[number];

/** Development tools and test-only packages: none may be installed in the runtime folder. */
const forbidden = [
  'tsx',
  'typescript',
  '@biomejs/biome',
  'turbo',
  'esbuild',
  'fast-check',
  '@pact-foundation/pact',
  'smtp-server',
  'selfsigned',
  '@sitemail/testkit',
  '@sitemail/mail-sink',
  '@sitemail/e2e',
  '@types/node',
];

const dockerfile = parseDockerfile(readFileSync(join(REPO_ROOT, 'Dockerfile'), 'utf8'));
const images = Object.fromEntries(services.map((s) => [s, targetImage(dockerfile, s)])) as Record<
  Service,
  TargetImage
>;

/** Every package installed under `dir` (nested node_modules too), by name. */
function installedPackages(dir: string): Set<string> {
  const names = new Set<string>();
  const walk = (modules: string) => {
    if (!existsSync(modules)) return;
    for (const entry of readdirSync(modules)) {
      if (entry.startsWith('.')) continue;
      const scoped = entry.startsWith('@');
      for (const name of scoped ? readdirSync(join(modules, entry)).map((n) => `${entry}/${n}`) : [entry]) {
        names.add(name);
        const path = join(modules, name);
        if (!lstatSync(path).isSymbolicLink()) walk(join(path, 'node_modules'));
      }
    }
  };
  walk(join(dir, 'node_modules'));
  return names;
}

/** Files of the folder outside node_modules: the project's own part of the image. */
function ownFiles(dir: string, base = dir): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (name === 'node_modules') return [];
    return lstatSync(path).isDirectory() ? ownFiles(path, base) : [relative(base, path)];
  });
}

function sizeOf(dir: string): number {
  let total = 0;
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    const stat = lstatSync(path);
    total += stat.isDirectory() ? sizeOf(path) : stat.size;
  }
  return total;
}

function rssKiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? Number.NaN);
}

interface Started {
  child: ChildProcess;
  url: string;
  readyMs: number;
  output(): string;
  stop(): Promise<number | null>;
}

/** The target's CMD, in its WORKDIR (the runtime folder), with its ENV and the test's settings on top. */
async function startFromImage(
  service: Service,
  runtimeDir: string,
  env: Record<string, string>,
  port: number,
): Promise<Started> {
  const image = images[service];
  const [command, ...args] = image.cmd;
  assert.equal(command, 'node');
  // Paths under the image's WORKDIR point into the runtime folder instead.
  const fromImage = Object.fromEntries(
    Object.entries(image.env).map(([k, v]) => [
      k,
      v.replace(new RegExp(`^${image.workdir}/`), `${runtimeDir}/`),
    ]),
  );
  const started = performance.now();
  const child = spawn(process.execPath, args, {
    cwd: runtimeDir,
    // Only PATH from this process: no NODE_OPTIONS (a loader would hide a missing build).
    env: { PATH: process.env.PATH ?? '', ...fromImage, HOST: '127.0.0.1', PORT: String(port), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (c: Buffer) => {
    output += c.toString();
  });
  child.stderr?.on('data', (c: Buffer) => {
    output += c.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  process.once('exit', () => child.kill('SIGKILL'));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null)
      throw new Error(`${service} exited (${child.exitCode}) before ready:\n${output}`);
    try {
      if ((await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(1000) })).ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`${service} not ready within 60 s:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  return {
    child,
    url,
    readyMs: Math.round(performance.now() - started),
    output: () => output,
    async stop() {
      if (child.exitCode !== null) return child.exitCode;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}

/** Folders the runtime stages' RUN lines make (`mkdir -p <dir> && chown node:node <dir>`, nothing else). */
function runtimeStageDirs(): string[] {
  const runs = new Set(
    services.flatMap((s) => images[s].instructions.filter((i) => i.keyword === 'RUN').map((i) => i.args)),
  );
  return [...runs].map((run) => {
    const m = /^mkdir -p (\S+) && chown node:node \1$/.exec(run);
    assert.ok(m?.[1], `the runtime stage only makes its data folder, not: RUN ${run}`);
    return m[1];
  });
}

describe('the production image (its runtime stage, assembled without Docker)', () => {
  const runtimeDir = mkdtempSync(join(tmpdir(), 'sitemail-runtime-'));
  const cleanups: (() => Promise<unknown> | unknown)[] = [
    () => rmSync(runtimeDir, { recursive: true, force: true }),
  ];
  let smtp: TestSmtpServer;
  let kafka: TestKafka;
  const running: Partial<Record<Service, Started>> = {};

  before(
    async () => {
      // The build the image is made of: turbo replays it from its cache when nothing changed.
      const build = spawnSync('npm', ['run', 'build'], { cwd: REPO_ROOT, encoding: 'utf8' });
      assert.equal(build.status, 0, `npm run build failed:\n${build.stdout}\n${build.stderr}`);
      // The same script and install command as the Dockerfile's build stage; --prefer-offline takes
      // the packages from the npm cache the repo's own install filled.
      assembleRuntime(runtimeDir, { install: true, npmFlags: ['--prefer-offline'] });
      // What the runtime stage's own RUN lines do (the data folder); the first test checks that
      // they do nothing else.
      for (const dir of runtimeStageDirs())
        mkdirSync(dir.replace(images.accounts.workdir ?? '', runtimeDir), { recursive: true });
    },
    { timeout: 600_000 },
  );

  after(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  it('the Dockerfile ships only the runtime folder, as a non-root user, with the script’s entry points', () => {
    const runs = dockerfile.flatMap((s) =>
      s.instructions.filter((i) => i.keyword === 'RUN').map((i) => i.args),
    );
    assert.ok(
      runs.some(
        (r) => r.includes('npm run build') && r.includes('node scripts/runtime-files.mjs /runtime --install'),
      ),
      `a RUN builds and lays out /runtime with scripts/runtime-files.mjs: ${JSON.stringify(runs)}`,
    );
    for (const service of services) {
      const image = images[service];
      assert.equal(
        image.baseImage,
        'node:20-slim',
        `${service} starts from a slim node image, not the build stage`,
      );
      const copies = image.instructions.filter((i) => i.keyword === 'COPY' || i.keyword === 'ADD');
      assert.deepEqual(
        copies.map((c) => c.args),
        [`--from=build /runtime ${image.workdir}`],
        `${service}: the runtime folder is all that is copied in`,
      );
      assert.equal(image.user, 'node');
      assert.equal(image.env.NODE_ENV, 'production');
      assert.deepEqual(image.cmd, serviceEntry(service));
    }
    assert.deepEqual(runtimeStageDirs(), ['/app/.data'], 'the runtime stage makes the data folder writable');
    assert.deepEqual(runtimeInstall.slice(0, 3), ['npm', 'ci', '--omit=dev']);
  });

  it('holds built JavaScript and production dependencies only', (t) => {
    const packages = installedPackages(runtimeDir);
    assert.deepEqual(
      forbidden.filter((p) => packages.has(p)),
      [],
      'no development or test package is installed',
    );
    for (const needed of [
      'fastify',
      'kafkajs',
      'pg',
      '@electric-sql/pglite',
      'nodemailer',
      '@sitemail/accounts',
    ]) {
      assert.ok(packages.has(needed), `${needed} is installed`);
    }
    const own = ownFiles(runtimeDir);
    assert.deepEqual(
      own.filter((f) => /\.test\.|\.bench\.|test-support|behaviour-suite|(^|\/)testing\//.test(f)),
      [],
      'no test, bench or test-support file',
    );
    assert.deepEqual(
      own.filter((f) => /\.[cm]?ts$/.test(f) && !/\.d\.[cm]?ts$/.test(f)),
      [],
      'no TypeScript source',
    );
    const imports = own
      .filter((f) => f.endsWith('.js'))
      .filter((f) =>
        /from ['"](node:test|@sitemail\/testkit|tsx)/.test(readFileSync(join(runtimeDir, f), 'utf8')),
      );
    assert.deepEqual(imports, [], 'no built file imports a test-only module');
    assert.ok(
      own.includes('services/accounts/dist/server.bundle.js') &&
        own.includes('services/notifications/dist/server.bundle.js'),
    );
    const full = installedPackages(REPO_ROOT);
    t.diagnostic(
      `runtime folder: ${(sizeOf(runtimeDir) / 2 ** 20).toFixed(1)} MiB, ${packages.size} packages ` +
        `(the repo's full install: ${full.size} packages), ${own.length} own files`,
    );
  });

  it('runs both services from it with the CMDs: a sign-up gets its verification email', {
    timeout: 180_000,
  }, async (t) => {
    const smtpUser = { username: 'sitemail', password: `smtp-${randomBytes(12).toString('hex')}` };
    smtp = await startSmtpServer({ auth: 'PLAIN', users: [smtpUser] });
    cleanups.push(() => smtp.close());
    kafka = await testKafka({
      topics: [
        { name: topics.accountsEvents, partitions: 3 },
        { name: topics.codeMonitoringEvents, partitions: 1 },
        { name: topics.notificationsDeadLetter, partitions: 1 },
      ],
    });
    cleanups.push(() => kafka.stop());

    let databaseUrl: string | undefined;
    if (process.env.DATABASE_URL) {
      const name = `runtime_image_${randomBytes(4).toString('hex')}`;
      const admin = await openDatabase({ url: process.env.DATABASE_URL, maxConnections: 1 });
      await admin.query(`CREATE DATABASE ${name}`);
      await admin.close();
      const url = new URL(process.env.DATABASE_URL);
      url.pathname = `/${name}`;
      databaseUrl = url.toString();
      cleanups.push(async () => {
        const db = await openDatabase({ url: process.env.DATABASE_URL as string, maxConnections: 1 });
        await db.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).finally(() => db.close());
      });
    }

    const accountsPort = await freePort();
    // The image's SITE_CONFIG path, now inside the runtime folder: this run's SMTP server.
    const inImage = images.accounts.env.SITE_CONFIG ?? '';
    assert.ok(
      inImage.startsWith(`${images.accounts.workdir}/`),
      'the image points SITE_CONFIG into its WORKDIR',
    );
    const siteConfig = inImage.replace(`${images.accounts.workdir}/`, `${runtimeDir}/`);
    assert.ok(existsSync(siteConfig), 'the image has that site config');
    writeFileSync(
      siteConfig,
      JSON.stringify({
        externalURL: `http://127.0.0.1:${accountsPort}`,
        'email.senderName': 'Runtime Image',
        'email.address': 'noreply@runtime.example.com',
        'email.smtp': {
          host: smtp.host,
          port: smtp.port,
          authentication: 'PLAIN',
          username: smtpUser.username,
          password: smtpUser.password,
          domain: 'runtime.example.com',
        },
        'auth.providers': [{ type: 'builtin' }],
      }),
    );
    const env = {
      KAFKA_BROKERS: kafka.brokers.join(','),
      LINK_TOKEN_KEY: generateLinkTokenKey('runtime'),
      ...(databaseUrl ? { DATABASE_URL: databaseUrl } : {}),
    };
    const [accounts, notifications] = await Promise.all([
      startFromImage('accounts', runtimeDir, env, accountsPort),
      startFromImage('notifications', runtimeDir, env, await freePort()),
    ]);
    running.accounts = accounts;
    running.notifications = notifications;
    cleanups.push(() => accounts.stop());
    cleanups.push(() => notifications.stop());
    // Idle figures of the built services, once both are up.
    await new Promise((r) => setTimeout(r, 1000));
    for (const [name, s] of Object.entries(running)) {
      t.diagnostic(
        `${name} (built, plain node): /healthz 200 after ${s.readyMs} ms, idle RSS ${rssKiB(s.child.pid as number)} KiB`,
      );
      // The CMD's --max-semi-space-size=2 is in effect: V8's new space is at most its two 2 MiB
      // semi-spaces (without the flag it has grown to 32 MiB by the end of a start).
      const metrics = await (await fetch(`${s.url}/metrics`)).text();
      const newSpace = /^nodejs_heap_space_size_total_bytes\{space="new"\} (\d+)$/m.exec(metrics)?.[1];
      assert.ok(newSpace, `${name}: /metrics reports the new space's size`);
      assert.ok(
        Number(newSpace) <= 4 * 1024 * 1024,
        `${name}: new space ${newSpace} bytes, over two 2 MiB semi-spaces: --max-semi-space-size=2 not in effect`,
      );
    }

    const person = {
      username: `runtime-${randomBytes(3).toString('hex')}`,
      email: `runtime-${randomBytes(3).toString('hex')}@users.runtime.example.com`,
      password: `pw-${randomBytes(9).toString('base64url')}`,
    };
    const signUp = await fetch(`${accounts.url}/sign-up`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify(person),
    });
    assert.equal(signUp.status, 201, await signUp.clone().text());

    const deadline = Date.now() + 60_000;
    let mail = smtp.received.find((m) => m.envelope.to.includes(person.email));
    while (!mail && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      mail = smtp.received.find((m) => m.envelope.to.includes(person.email));
    }
    assert.ok(
      mail,
      `a verification email reached the SMTP server:\n${accounts.output()}\n${notifications.output()}`,
    );
    assert.equal(mail.subject, 'Verify your email on Runtime Image');
    assert.equal(mail.authenticatedUser, smtpUser.username);
    const link = new RegExp(`http://127\\.0\\.0\\.1:${accountsPort}/-/verify-email[^\\s<>"]*`).exec(
      mail.text ?? '',
    );
    assert.ok(link, `the email links to accounts:\n${mail.text}`);
    const followed = await fetch(link[0], { headers: { accept: 'application/json' } });
    assert.equal(followed.status, 200, 'the link verifies the address');

    // Built code shuts down as it should on the SIGTERM a container stop sends.
    assert.equal(await accounts.stop(), 0, accounts.output());
    assert.equal(await notifications.stop(), 0, notifications.output());
  });
});
