import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import Fastify from 'fastify';
import Type from 'typebox';
import { validatorCompiler } from './validation.ts';

describe('validatorCompiler', () => {
  it('an integer in a query string must be written as one (TypeBox alone reads 1.5 as 1, 0x10 as 16)', async () => {
    const app = Fastify();
    app.setValidatorCompiler(validatorCompiler);
    app.get(
      '/',
      { schema: { querystring: Type.Object({ limit: Type.Optional(Type.Integer({ minimum: 1 })) }) } },
      async (request) => ({ limit: (request.query as { limit?: number }).limit ?? null }),
    );
    assert.deepEqual((await app.inject('/?limit=7')).json(), { limit: 7 });
    for (const bad of ['1.5', '0x10', '1e2', ' 3']) {
      const reply = await app.inject(`/?limit=${encodeURIComponent(bad)}`);
      assert.equal(reply.statusCode, 400, `limit=${bad}`);
    }
    await app.close();
  });
});
