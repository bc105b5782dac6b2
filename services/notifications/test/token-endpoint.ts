import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { decodeProtectedHeader, type generateKeyPair, jwtVerify } from 'jose';

type PublicKey = Awaited<ReturnType<typeof generateKeyPair>>['publicKey'];

export interface TokenEndpoint {
  url: string;
  /** Each request: its grant, how the client authenticated, and the JWS header of its assertion. */
  requests: { grant: string; clientAuth: string; assertionHeader?: Record<string, unknown> }[];
  /** Whether a token was issued by this endpoint, for `mailbox`, and is not marked expired. */
  valid(token: string, mailbox: string): boolean;
  /** Marks a token expired, as the provider does when its lifetime ends. */
  expire(token: string): void;
  close(): Promise<void>;
}

/**
 * A real OAuth2 token endpoint: checks the client secret, the refresh token, or the signature
 * of a JWT (client assertion or RFC 7523 bearer assertion) against the public key, counts
 * requests, and issues short-lived tokens.
 */
export async function startTokenEndpoint(
  publicKey: PublicKey,
  client: { clientID: string; clientSecret: string; refreshToken: string },
): Promise<TokenEndpoint> {
  const { clientID: CLIENT_ID, clientSecret: CLIENT_SECRET, refreshToken: REFRESH_TOKEN } = client;
  const issued = new Map<string, { mailbox: string | undefined; expired: boolean }>();
  const requests: TokenEndpoint['requests'] = [];
  let url = '';
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
      const reply = (status: number, body: object) => {
        res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
        res.end(JSON.stringify(body));
      };
      const refuse = (error: string, description: string) =>
        reply(error === 'invalid_client' ? 401 : 400, { error, error_description: description });
      const verify = async (jwt: string | null, subject?: string) => {
        if (!jwt) return undefined;
        try {
          const audience = [url, new URL(url).origin, `${new URL(url).origin}/`];
          const { payload } = await jwtVerify(jwt, publicKey, { issuer: CLIENT_ID, audience, subject });
          return payload;
        } catch {
          return undefined;
        }
      };
      const grant = form.get('grant_type') ?? '';
      const assertionType = form.get('client_assertion_type');
      requests.push({
        grant,
        clientAuth: assertionType ? 'private_key_jwt' : form.get('client_secret') ? 'secret' : 'none',
        ...(form.get('client_assertion') || form.get('assertion')
          ? {
              assertionHeader: decodeProtectedHeader(
                form.get('client_assertion') ?? form.get('assertion') ?? '',
              ),
            }
          : {}),
      });
      let mailbox: string | undefined;
      if (grant === 'urn:ietf:params:oauth:grant-type:jwt-bearer') {
        const claims = await verify(form.get('assertion'));
        if (!claims?.sub) return refuse('invalid_grant', 'bad assertion signature');
        mailbox = claims.sub;
      } else {
        const clientOk = assertionType
          ? (await verify(form.get('client_assertion'), CLIENT_ID)) !== undefined
          : form.get('client_id') === CLIENT_ID && form.get('client_secret') === CLIENT_SECRET;
        if (!clientOk) return refuse('invalid_client', 'AADSTS7000215: Invalid client secret provided.');
        if (grant === 'refresh_token' && form.get('refresh_token') !== REFRESH_TOKEN) {
          return refuse('invalid_grant', 'Token has been expired or revoked.');
        }
        if (grant !== 'refresh_token' && grant !== 'client_credentials') {
          return refuse('unsupported_grant_type', grant);
        }
      }
      const token = `at-${randomUUID()}`;
      issued.set(token, { mailbox, expired: false });
      reply(200, { access_token: token, token_type: 'Bearer', expires_in: 300 });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/oauth2/v2.0/token`;
  return {
    url,
    requests,
    valid(token, mailbox) {
      const t = issued.get(token);
      return t !== undefined && !t.expired && (t.mailbox === undefined || t.mailbox === mailbox);
    },
    expire(token) {
      const t = issued.get(token);
      if (t) t.expired = true;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
