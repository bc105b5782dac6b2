import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { describe, it } from 'node:test';
import Fastify from 'fastify';
import { listenOrClose } from './server.ts';

describe('listenOrClose', () => {
  it('answers on the URL it gives, and closes once however often close is called', async () => {
    const app = Fastify();
    app.get('/', async () => ({ ok: true }));
    const listening = await listenOrClose(app, { port: 0 });
    assert.match(listening.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.deepEqual(await (await fetch(listening.url)).json(), { ok: true });
    const first = listening.close();
    assert.equal(listening.close(), first);
    await first;
    await assert.rejects(fetch(listening.url));
  });

  it('a port in use closes the app (its onClose hooks run) and rethrows', async () => {
    const taken = createServer();
    await new Promise<void>((done) => taken.listen(0, '127.0.0.1', done));
    const port = (taken.address() as { port: number }).port;
    try {
      const app = Fastify();
      let closed = false;
      app.addHook('onClose', async () => {
        closed = true;
      });
      await assert.rejects(listenOrClose(app, { port }), /EADDRINUSE/);
      assert.equal(closed, true, 'what ready started is stopped');
    } finally {
      taken.close();
    }
  });
});
