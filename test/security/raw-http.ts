/**
 * A raw HTTP/1.1 client for hostile requests: node:http sends whatever path, header and body
 * bytes it is given (fetch would normalise or refuse some of them), to loopback only.
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';

export interface RawRequest {
  method: string;
  /** Already encoded: path and query exactly as they go on the request line. */
  path: string;
  headers: Record<string, string>;
  body?: string | Buffer;
}

export interface RawReply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** The request line and header values node:http lets through (it refuses the rest before sending). */
export const headerSafe = (v: string) => /^[\t\x20-\x7e\x80-\xff]*$/.test(v);

/**
 * `sourceIp` picks the loopback address the connection comes from (127.0.0.2, …): the services
 * rate-limit per client address, and spreading the requests over many keeps most of them past
 * the limiter and into validation, where the bugs are.
 */
export function send(
  base: string,
  r: RawRequest,
  o: { sourceIp?: string; timeoutMs?: number } = {},
): Promise<RawReply> {
  const url = new URL(base);
  assert.equal(url.hostname, '127.0.0.1', `the fuzz talks to loopback only, not ${base}`);
  if (o.sourceIp) assert.match(o.sourceIp, /^127\./, 'source addresses are loopback too');
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: Number(url.port),
        method: r.method,
        path: r.path,
        headers: r.headers,
        localAddress: o.sourceIp,
        agent: false,
        timeout: o.timeoutMs ?? 30_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString('utf8'),
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within ${o.timeoutMs ?? 30_000} ms`)));
    req.on('error', reject);
    req.end(r.body);
  });
}
