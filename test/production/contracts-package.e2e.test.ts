/**
 * `@sitemail/contracts` as a fleet service outside this monorepo gets it: `npm pack -w contracts`
 * (which builds it and packs with the packed manifest, contracts/scripts/package-files.mjs), the
 * tarball installed with `npm ci --offline` into an empty folder under the OS temp dir, then a plain `node`
 * script there (no tsx, no loader, no conditions, no NODE_OPTIONS) decodes every example event and
 * gets a malformed one refused with the field named; the consumer's TypeScript type-checks
 * against the shipped declarations; the JSON Schemas and the AsyncAPI document are files in it.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
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
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { eventSchemas, examples, topics, toWireMessage } from '@sitemail/contracts';
import { type TestKafka, testKafka } from '@sitemail/testkit';
import { Kafka, logLevel } from 'kafkajs';
import { REPO_ROOT } from '../e2e/processes.ts';

const contractsManifest = join(REPO_ROOT, 'contracts/package.json');

/** Only what npm needs: nothing of this run's npm or tsx settings reaches the consumer. */
const cleanEnv = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? tmpdir() };

function run(command: string, args: string[], cwd: string, env: Record<string, string> = cleanEnv) {
  const result = spawnSync(command, args, { cwd, env, encoding: 'utf8', timeout: 180_000 });
  assert.equal(
    result.status,
    0,
    `${command} ${args.join(' ')} failed (${result.status ?? result.signal}):\n${result.stdout}\n${result.stderr}`,
  );
  return result.stdout;
}

/** The fleet service's code: plain ESM JavaScript, as its authors would write it. */
const consumerScript = `
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { decode, EventDecodeError, eventSchemas, examples, topics, toWireMessage } from '@sitemail/contracts';
import asyncapi from '@sitemail/contracts/asyncapi.json' with { type: 'json' };

const decoded = [];
for (const [type, event] of Object.entries(examples)) {
  const value = Buffer.from(toWireMessage(event).value); // what kafkajs hands to eachMessage
  assert.deepEqual(decode(type, value), event);
  decoded.push(type);
}
// The examples in the AsyncAPI file, decoded by the topic of their channel.
const fromDocument = [];
for (const channel of Object.values(asyncapi.channels)) {
  for (const ref of Object.values(channel.messages)) {
    const message = asyncapi.components.messages[ref.$ref.split('/').pop()];
    for (const example of message.examples ?? []) {
      assert.equal(decode(channel.address, JSON.stringify(example.payload)).type, message.name);
      fromDocument.push(message.name);
    }
  }
}
const malformed = { ...examples.UserCreated, data: { ...examples.UserCreated.data, email: 'not an address' } };
let refused;
try {
  decode(topics.accountsEvents, JSON.stringify(malformed));
} catch (err) {
  refused = { isDecodeError: err instanceof EventDecodeError, field: err.field, message: err.message };
}
console.log(JSON.stringify({
  resolved: import.meta.resolve('@sitemail/contracts'),
  types: Object.keys(eventSchemas),
  decoded,
  fromDocument,
  refused,
}));
`;

/** The same consumer in TypeScript: the declarations must give it the events' types. */
const consumerTypes = `
import { decode, EventDecodeError, topics, type FleetEvent } from '@sitemail/contracts';
import { eventJsonSchema } from '@sitemail/contracts/json-schema';

export function onMessage(value: Buffer | null): string {
  const event = decode(topics.accountsEvents, value);
  if (event.type === 'EmailVerified') return event.data.email;
  const created = decode('UserCreated', value);
  const username: string = created.data.username;
  // @ts-expect-error a field the contract does not have is a type error
  created.data.nickname;
  const any: FleetEvent = created;
  return username + any.id + String(eventJsonSchema('UserCreated').$id) + EventDecodeError.name;
}
`;

/**
 * The fleet service's package.json and lockfile. The lockfile pins the tarball's dependencies to
 * the versions this repository locks (and so tests with), which lets npm install them offline from
 * the cache that the repo's own `npm ci` filled: npm's cache holds those tarballs by integrity, not
 * necessarily the registry metadata an unlocked `npm install <tarball>` would ask for.
 */
function writeConsumerManifests(dir: string, tarball: string) {
  const spec = `file:${tarball}`;
  const packed = JSON.parse(run('tar', ['xzOf', tarball, 'package/package.json'], dir));
  const repoLock = JSON.parse(readFileSync(join(REPO_ROOT, 'package-lock.json'), 'utf8')).packages;
  // kafkajs for the README's consumer, at the version this repository locks.
  const dependencies = [...Object.keys(packed.dependencies ?? {}), 'kafkajs'];
  const locked = Object.fromEntries(
    dependencies.map((name) => {
      const entry = repoLock[`node_modules/${name}`];
      assert.ok(entry?.integrity, `${name} is locked in the repo's package-lock.json`);
      return [`node_modules/${name}`, entry];
    }),
  );
  const manifest = {
    name: 'fleet-service',
    private: true,
    type: 'module',
    dependencies: { [packed.name]: spec, kafkajs: repoLock['node_modules/kafkajs']?.version },
  };
  const lock = {
    name: manifest.name,
    lockfileVersion: 3,
    requires: true,
    packages: {
      '': { name: manifest.name, dependencies: manifest.dependencies },
      [`node_modules/${packed.name}`]: {
        version: packed.version,
        resolved: spec,
        dependencies: packed.dependencies,
      },
      ...locked,
    },
  };
  writeFileSync(join(dir, 'package.json'), JSON.stringify(manifest, null, 2));
  writeFileSync(join(dir, 'package-lock.json'), JSON.stringify(lock, null, 2));
}

describe('the contracts package, installed outside the workspace', () => {
  let work: string;
  let consumer: string;
  let tarball: string;
  let installed: string;
  let workspaceManifest: string;

  before(() => {
    work = mkdtempSync(join(tmpdir(), 'sitemail-contracts-pack-'));
    consumer = join(work, 'fleet-service');
    mkdirSync(consumer);
    workspaceManifest = readFileSync(contractsManifest, 'utf8');
    const out = run('npm', ['pack', '-w', 'contracts', '--pack-destination', work, '--json'], REPO_ROOT, {
      ...cleanEnv,
      ...(process.env.npm_config_cache ? { npm_config_cache: process.env.npm_config_cache } : {}),
    });
    const name = readdirSync(work).find((f) => f.endsWith('.tgz'));
    assert.ok(name, `npm pack wrote a tarball:\n${out}`);
    tarball = join(work, name);
    writeConsumerManifests(consumer, tarball);
    run('npm', ['ci', '--offline', '--no-audit', '--no-fund', '--ignore-scripts'], consumer);
    installed = join(consumer, 'node_modules/@sitemail/contracts');
  });

  let kafka: TestKafka | undefined;
  after(async () => {
    await kafka?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  it('packs without leaving the workspace manifest changed', () => {
    assert.equal(
      readFileSync(contractsManifest, 'utf8'),
      workspaceManifest,
      'contracts/package.json restored',
    );
    assert.equal(existsSync(join(REPO_ROOT, 'contracts/.package.workspace.json')), false, 'no backup left');
  });

  it('ships JavaScript, declarations, schemas and the AsyncAPI document, and nothing of the workspace', () => {
    const listing = run('tar', ['tzf', tarball], work)
      .trim()
      .split('\n')
      .map((f) => f.replace(/^package\//, ''));
    const dist = listing.filter((f) => f.startsWith('dist/'));
    const js = dist.filter((f) => f.endsWith('.js'));
    assert.ok(js.includes('dist/index.js') && js.includes('dist/decode.js'), 'built entry and decoder');
    assert.deepEqual(
      dist.filter((f) => f.endsWith('.d.ts')).sort(),
      js.map((f) => f.replace(/\.js$/, '.d.ts')).sort(),
      'a .d.ts per module',
    );
    assert.deepEqual(
      listing.filter((f) => /^(src|scripts|released|pacts)\/|\.test\.|(?<!\.d)\.ts$|tsconfig/.test(f)),
      [],
      'no source, test, script or build config',
    );
    assert.ok(listing.includes('generated/asyncapi.json') && listing.includes('README.md'));
    for (const type of Object.keys(eventSchemas))
      assert.ok(listing.includes(`generated/schemas/${type}.schema.json`), `${type} JSON Schema`);
    const declarations = readFileSync(join(installed, 'dist/index.d.ts'), 'utf8');
    assert.doesNotMatch(declarations, /from '\.\/[^']+\.ts'/, 'declarations import ./x.js, not ./x.ts');
  });

  it('has a manifest for plain Node: dist under the default conditions, only real npm dependencies', () => {
    const manifest = JSON.parse(readFileSync(join(installed, 'package.json'), 'utf8'));
    assert.deepEqual(manifest.exports['.'], {
      types: './dist/index.d.ts',
      import: './dist/index.js',
      default: './dist/index.js',
    });
    assert.deepEqual(Object.keys(manifest.dependencies).sort(), ['typebox', 'validator']);
    assert.equal(manifest.scripts, undefined, 'no monorepo scripts');
    assert.equal(manifest.devDependencies, undefined);
    assert.equal(lstatSync(installed).isSymbolicLink(), false, 'a copy, not a link into the workspace');
    assert.deepEqual(
      readdirSync(join(consumer, 'node_modules/@sitemail')),
      ['contracts'],
      'no workspace package pulled in',
    );
  });

  it('decodes every example on plain node and refuses a malformed event naming the field', () => {
    writeFileSync(join(consumer, 'consume.mjs'), consumerScript);
    const out = JSON.parse(run(process.execPath, ['consume.mjs'], consumer));
    assert.equal(out.resolved, `file://${installed}/dist/index.js`);
    assert.deepEqual(out.decoded.sort(), Object.keys(eventSchemas).sort(), 'every event type has an example');
    assert.deepEqual(
      out.fromDocument.sort(),
      Object.keys(eventSchemas).sort(),
      'and so has the AsyncAPI document',
    );
    assert.deepEqual(out.refused, {
      isDecodeError: true,
      field: '/data/email',
      message: 'not a valid accounts.user-events.v1 event: field /data/email must match format "email"',
    });
  });

  it("type-checks a TypeScript consumer against the shipped declarations (the repo's tsc)", () => {
    writeFileSync(join(consumer, 'consume.ts'), consumerTypes);
    const tsconfig = {
      compilerOptions: {
        target: 'ES2022',
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        strict: true,
        noEmit: true,
        skipLibCheck: true, // the declarations come from checked sources; checking typebox's costs a minute
        types: ['node'],
        typeRoots: [join(REPO_ROOT, 'node_modules/@types')],
      },
      files: ['consume.ts'],
    };
    writeFileSync(join(consumer, 'tsconfig.json'), JSON.stringify(tsconfig));
    run(
      process.execPath,
      [join(REPO_ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'],
      consumer,
    );
  });

  it("runs the README's kafkajs consumer against Kafka: events decoded, a newer type from the owner skipped", {
    timeout: 120_000,
  }, async () => {
    const readme = readFileSync(join(REPO_ROOT, 'contracts/README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('## Using the contracts outside this repository'));
    const snippet = /```js\n([\s\S]*?)```/.exec(section)?.[1];
    if (!snippet?.includes("brokers: ['kafka:9092']"))
      assert.fail('the README has the consumer, with its brokers');
    // One partition: the newer type comes before EmailVerified, so a consumer that threw on it
    // (kafkajs retries the message) would never print EmailVerified.
    kafka = await testKafka({ topics: [{ name: topics.accountsEvents, partitions: 1 }] });
    const brokers = kafka.brokers;
    writeFileSync(
      join(consumer, 'readme-consumer.mjs'),
      snippet.replace("['kafka:9092']", JSON.stringify(brokers)),
    );
    const child = spawn(process.execPath, ['readme-consumer.mjs'], { cwd: consumer, env: cleanEnv });
    let output = '';
    child.stdout.on('data', (c: Buffer) => {
      output += c.toString();
    });
    child.stderr.on('data', (c: Buffer) => {
      output += c.toString();
    });
    const producer = new Kafka({
      brokers,
      clientId: 'contracts-package-test',
      logLevel: logLevel.NOTHING,
    }).producer();
    await producer.connect();
    const newer = {
      ...examples.UserDeleted,
      id: randomUUID(),
      type: 'UserRenamed',
      data: { username: 'al' },
    };
    const { id, userId, data } = examples.EmailVerified;
    const printed = `${id} ${userId} ${data.email}`;
    try {
      // The README subscribes from the latest offset, so the pair is sent again until the
      // consumer, once it has joined, has read one: at least once, as the fleet's topics deliver.
      const deadline = Date.now() + 90_000;
      while (!output.includes(printed)) {
        assert.ok(
          Date.now() < deadline,
          `the README consumer never printed EmailVerified:\n${output.slice(-3000)}`,
        );
        assert.equal(child.exitCode, null, `the README consumer exited:\n${output.slice(-3000)}`);
        const pair = [
          toWireMessage(newer as unknown as typeof examples.UserDeleted),
          toWireMessage(examples.EmailVerified),
        ];
        await producer.send({
          topic: topics.accountsEvents,
          messages: pair.map((m) => ({ key: m.key, value: m.value, headers: m.headers })),
        });
        await new Promise((r) => setTimeout(r, 500));
      }
    } finally {
      await producer.disconnect();
      child.kill('SIGKILL');
    }
    assert.doesNotMatch(output, /EventDecodeError|not a valid/, 'the newer type was skipped, not thrown');
  });
});
