import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, it } from 'node:test';
import { Parser } from '@asyncapi/parser';
import { Compile } from 'typebox/compile';
import { contractsDir, generatedDir, generatedFiles } from '../scripts/generate.ts';
import { buildAsyncApiDocument } from './asyncapi.ts';
import { describeBreaks, findBreakingChanges } from './compat.ts';
import { examples, topics, toWireMessage } from './index.ts';
import { eventJsonSchemas, type JsonSchema } from './json-schema.ts';

const listFiles = (dir: string): string[] =>
  readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? listFiles(join(dir, e.name)) : [relative(generatedDir, join(dir, e.name))],
  );

const readSchemas = (dir: string): Record<string, JsonSchema> =>
  Object.fromEntries(
    readdirSync(dir)
      .filter((f) => f.endsWith('.schema.json'))
      .map((f) => [
        f.replace(/\.schema\.json$/, ''),
        JSON.parse(readFileSync(join(dir, f), 'utf8')) as JsonSchema,
      ]),
  );

/** Compiles a plain JSON Schema (as a non-TypeScript consumer would use the generated files). */
const check = (schema: unknown, value: unknown) => {
  const validator = Compile(schema as Parameters<typeof Compile>[0]);
  return validator.Check(value)
    ? []
    : [...validator.Errors(value)].map((e) => `${e.instancePath} ${e.message}`);
};

describe('generated contract artefacts', () => {
  it('are up to date with the TypeBox source', () => {
    const expected = generatedFiles();
    const stale: string[] = [];
    for (const [path, content] of expected) {
      const file = join(generatedDir, path);
      if (!existsSync(file) || readFileSync(file, 'utf8') !== content) stale.push(path);
    }
    const extra = listFiles(generatedDir).filter((p) => !expected.has(p));
    assert.deepEqual(
      { stale, extra },
      { stale: [], extra: [] },
      'contracts/generated is stale: run npm run generate -w contracts',
    );
  });

  it('the AsyncAPI document parses with @asyncapi/parser without errors', async () => {
    const { document, diagnostics } = await new Parser().parse(
      readFileSync(join(generatedDir, 'asyncapi.json'), 'utf8'),
    );
    const errors = diagnostics.filter((d) => d.severity === 0);
    assert.deepEqual(
      errors.map((d) => `${d.path.join('/')}: ${d.message}`),
      [],
    );
    assert.ok(document, 'parsed document');
    assert.equal(document.version(), '3.0.0');
    const addresses = document
      .channels()
      .all()
      .map((c) => c.address())
      .sort();
    assert.deepEqual(addresses, Object.values(topics).sort());
    const accountsChannel = document
      .channels()
      .all()
      .find((c) => c.address() === topics.accountsEvents);
    assert.ok(
      accountsChannel
        ?.messages()
        .all()
        .some((m) => m.id() === 'ApiKeyCreated'),
    );
    const actions = document
      .operations()
      .all()
      .map((o) => `${o.action()} ${o.channels().all()[0]?.address()}`)
      .sort();
    assert.ok(
      actions.includes(`send ${topics.accountsEvents}`) &&
        actions.includes(`receive ${topics.accountsEvents}`),
    );
  });

  it('a broken AsyncAPI document is reported as an error (the parse check can fail)', async () => {
    const doc = buildAsyncApiDocument() as unknown as { channels: Record<string, { address: unknown }> };
    (doc.channels.accountsUserEvents as { address: unknown }).address = 42;
    const { diagnostics } = await new Parser().parse(JSON.stringify(doc));
    assert.ok(diagnostics.some((d) => d.severity === 0));
  });

  it('every example in the AsyncAPI document validates against its payload and headers schemas', () => {
    const { components } = buildAsyncApiDocument();
    const messages = Object.entries(components.messages).filter(([name]) => name !== 'DeadLetter');
    assert.equal(messages.length, Object.keys(examples).length);
    for (const [name, message] of messages) {
      const m = message as {
        payload: unknown;
        headers: unknown;
        examples: { payload: unknown; headers: unknown }[];
      };
      assert.equal(m.examples.length, 1, name);
      for (const example of m.examples) {
        assert.deepEqual(check(m.payload, example.payload), [], `${name} payload example`);
        assert.deepEqual(check(m.headers, example.headers), [], `${name} headers example`);
      }
      assert.ok(check(m.payload, { ...(m.examples[0]?.payload as object), position: 'first' }).length > 0);
    }
  });

  it('every example validates against its generated JSON Schema file; a broken one does not', () => {
    const schemas = readSchemas(join(generatedDir, 'schemas'));
    for (const [type, example] of Object.entries(examples)) {
      assert.deepEqual(check(schemas[type], example), [], type);
    }
    const broken = {
      ...examples.ApiKeyCreated,
      data: { ...examples.ApiKeyCreated.data, secretSha256: 'not-a-hash' },
    };
    assert.ok(check(schemas.ApiKeyCreated, broken).some((e) => e.startsWith('/data/secretSha256')));
    const wrongHeaders = { ...toWireMessage(examples.EmailAdded).headers, ce_type: 'UserCreated' };
    const headersSchema = (buildAsyncApiDocument().components.messages.EmailAdded as { headers: unknown })
      .headers;
    assert.ok(check(headersSchema, wrongHeaders).length > 0);
  });
});

describe('schema evolution guard', () => {
  it('the current schemas do not break consumers of the newest released contract version', () => {
    const versions = readdirSync(join(contractsDir, 'released'))
      .filter((d) => /^v\d+$/.test(d))
      .sort((a, b) => Number(a.slice(1)) - Number(b.slice(1)));
    const newest = versions.at(-1);
    assert.ok(newest, 'a released version is present');
    const released = readSchemas(join(contractsDir, 'released', newest));
    assert.ok(Object.keys(released).length >= 15, `released ${newest} schemas are present`);
    const breaks = findBreakingChanges(released, eventJsonSchemas());
    assert.equal(
      breaks.length,
      0,
      `breaking change against released ${newest} (see contracts/released/README.md):\n${describeBreaks(breaks)}`,
    );
  });
});

describe('docker-compose.yml', () => {
  it('creates every topic of the contract and points the services at an existing site config', () => {
    const compose = readFileSync(join(contractsDir, '..', 'docker-compose.yml'), 'utf8');
    const created = /for topic in ([^;]+);/.exec(compose)?.[1]?.trim().split(/\s+/) ?? [];
    assert.deepEqual(created.sort(), Object.values(topics).sort());
    const siteConfig = /SITE_CONFIG: \/config\/(\S+)/.exec(compose)?.[1];
    assert.ok(siteConfig && existsSync(join(contractsDir, '..', 'config', siteConfig)), String(siteConfig));
  });
});
