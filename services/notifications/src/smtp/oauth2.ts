import type { SmtpOAuth2Config } from '@sitemail/site-config';
import { importPKCS8, SignJWT } from 'jose';
import * as oauth from 'oauth4webapi';
import { isLoopbackHost } from './connection-rules.ts';
import { scrubSecrets, type TransportErrorLike } from './errors.ts';

/**
 * Access tokens for SMTP XOAUTH2, from the token endpoint of `email.smtp.oauth2`. The requests and
 * client authentication are oauth4webapi's, the RS256 assertion is signed by jose: no crypto here.
 * One token serves every connection of a pool until shortly before it expires; concurrent
 * connections share one request in flight, so a burst of sends costs one token request.
 */
export interface TokenSource {
  get(): Promise<string>;
  /** A token other than `rejected` (which the SMTP server refused): a new one, fetched at most once per rejection. */
  refresh(rejected: string): Promise<string>;
  /** What a message must never contain: the configured secrets and the tokens handed out. */
  secrets(): string[];
}

const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
// Token endpoint errors that a retry with the same config cannot fix (RFC 6749 section 5.2).
const PERMANENT = new Set([
  'invalid_client',
  'invalid_grant',
  'unauthorized_client',
  'unsupported_grant_type',
  'invalid_scope',
  'invalid_request',
]);

/** A token endpoint failure, reported at step `auth` like the SMTP server's own refusals. */
export function tokenEndpointError(message: string, permanent: boolean): Error & TransportErrorLike {
  return Object.assign(new Error(message), {
    guard: { step: 'auth' as const, permanent },
    tokenEndpoint: true,
  });
}

/**
 * Why `tokenURL` cannot be used, or undefined. Checked before a pool is built: the saved config is
 * validated already, but the unsaved one of `POST /test-email` is not.
 */
export function tokenUrlProblem(tokenURL: string): string | undefined {
  let url: URL;
  try {
    url = new URL(tokenURL);
  } catch {
    return 'email.smtp.oauth2.tokenURL must be an absolute https URL';
  }
  if (url.protocol === 'https:' || (url.protocol === 'http:' && isLoopbackHost(url.hostname)))
    return undefined;
  return 'email.smtp.oauth2.tokenURL must be an absolute https URL (http only toward a loopback host)';
}

export interface TokenSourceOptions {
  now?: () => number;
  /** Per request; a hanging endpoint must fail the send, not hold it. */
  timeoutMs?: number;
}

/** Assumes a `tokenURL` that {@link tokenUrlProblem} accepts. */
export function createTokenSource(
  config: SmtpOAuth2Config,
  username: string,
  opts: TokenSourceOptions = {},
): TokenSource {
  const now = opts.now ?? Date.now;
  const url = new URL(config.tokenURL);
  const as: oauth.AuthorizationServer = { issuer: url.origin, token_endpoint: config.tokenURL };
  const client: oauth.Client = { client_id: config.clientID };
  // oauth4webapi refuses http by default; allowed only toward this machine (a local token
  // endpoint, as in the tests), where the secret does not cross a network
  const insecure = url.protocol === 'http:' && isLoopbackHost(url.hostname);
  const options = {
    signal: () => AbortSignal.timeout(opts.timeoutMs ?? 15_000),
    ...(insecure ? { [oauth.allowInsecureRequests]: true } : {}),
  };
  const configured = [config.clientSecret, config.refreshToken, config.privateKey].filter(
    (s): s is string => typeof s === 'string',
  );
  const issued: string[] = [];
  let cached: { token: string; freshUntil: number } | undefined;
  let inFlight: Promise<string> | undefined;

  const signingKey = () =>
    importPKCS8(config.privateKey ?? '', 'RS256').catch(() => {
      // jose's reason may quote the key material; the key is named, never shown
      throw tokenEndpointError('email.smtp.oauth2.privateKey is not a PEM PKCS#8 RSA private key', true);
    });
  const clientAuth = async (): Promise<oauth.ClientAuth> => {
    if (config.clientSecret) return oauth.ClientSecretPost(config.clientSecret);
    if (config.privateKey && config.grant === 'client_credentials') {
      // private_key_jwt: Microsoft's certificate credentials, which name the certificate by x5t
      const x5t = thumbprint(config.certificateThumbprint);
      return oauth.PrivateKeyJwt(
        { key: await signingKey(), ...(config.keyID ? { kid: config.keyID } : {}) },
        x5t
          ? {
              [oauth.modifyAssertion]: (header) => {
                header.x5t = x5t;
              },
            }
          : {},
      );
    }
    return oauth.None();
  };
  const scope: Record<string, string> = config.scope ? { scope: config.scope } : {};

  const request = async (): Promise<oauth.TokenEndpointResponse> => {
    const auth = await clientAuth();
    switch (config.grant) {
      case 'client_credentials': {
        const res = await oauth.clientCredentialsGrantRequest(as, client, auth, scope, options);
        return oauth.processClientCredentialsResponse(as, client, res);
      }
      case 'refresh_token': {
        const res = await oauth.refreshTokenGrantRequest(as, client, auth, config.refreshToken ?? '', {
          ...options,
          additionalParameters: scope,
        });
        return oauth.processRefreshTokenResponse(as, client, res);
      }
      case 'jwt_bearer': {
        // RFC 7523 as Google service accounts use it: issued by the account, for the mailbox
        // (domain-wide delegation), to the token endpoint, valid one hour at most
        const assertion = await new SignJWT(scope)
          .setProtectedHeader({ alg: 'RS256', typ: 'JWT', ...(config.keyID ? { kid: config.keyID } : {}) })
          .setIssuer(config.clientID)
          .setSubject(username)
          .setAudience(config.tokenURL)
          .setIssuedAt(Math.floor(now() / 1000))
          .setExpirationTime(Math.floor(now() / 1000) + 3600)
          .sign(await signingKey());
        const res = await oauth.genericTokenEndpointRequest(
          as,
          client,
          auth,
          JWT_BEARER,
          { assertion },
          options,
        );
        return oauth.processGenericTokenEndpointResponse(as, client, res);
      }
      default: {
        const unknown: never = config.grant;
        throw tokenEndpointError(`unknown email.smtp.oauth2.grant ${JSON.stringify(unknown)}`, true);
      }
    }
  };

  const fetchToken = (): Promise<string> => {
    inFlight ??= (async () => {
      try {
        const started = now();
        const res = await request();
        const lifetimeMs = (res.expires_in ?? 3600) * 1000;
        // 60 s early, or half the lifetime of a token shorter than two minutes
        const freshUntil = started + lifetimeMs - Math.min(60_000, lifetimeMs / 2);
        cached = { token: res.access_token, freshUntil };
        issued.push(res.access_token);
        if (issued.length > 4) issued.shift();
        return res.access_token;
      } catch (err) {
        throw describe(err);
      } finally {
        inFlight = undefined;
      }
    })();
    return inFlight;
  };

  const describe = (err: unknown): Error => {
    if (err instanceof Error && 'guard' in err) return err;
    const where = `the token endpoint ${url.origin}${url.pathname}`;
    if (err instanceof oauth.ResponseBodyError) {
      const detail = err.error_description ? ` (${err.error_description})` : '';
      const message = scrubSecrets(`${where} refused: ${err.error}${detail}`, configured);
      return tokenEndpointError(message, PERMANENT.has(err.error));
    }
    const cause =
      err instanceof Error ? ((err.cause as Error | undefined)?.message ?? err.message) : String(err);
    return tokenEndpointError(scrubSecrets(`${where} failed: ${cause}`, configured), false);
  };

  return {
    get() {
      if (cached && now() < cached.freshUntil) return Promise.resolve(cached.token);
      return fetchToken();
    },
    refresh(rejected) {
      if (cached && cached.token !== rejected && now() < cached.freshUntil)
        return Promise.resolve(cached.token);
      if (cached?.token === rejected) cached = undefined;
      return fetchToken();
    },
    secrets() {
      const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');
      return [...configured, ...issued, ...issued.map((t) => b64(xoauth2String(username, t)))];
    },
  };
}

/** `x5t` is base64url; the Entra portal shows the thumbprint in hex (optionally with colons). */
function thumbprint(value: string | undefined): string | undefined {
  if (!value) return undefined;
  const hex = value.replace(/:/g, '');
  return /^[0-9A-Fa-f]{40}$/.test(hex) ? Buffer.from(hex, 'hex').toString('base64url') : value;
}

/** The SASL XOAUTH2 initial response (Google's and Microsoft's documented format), before base64. */
export function xoauth2String(user: string, token: string): string {
  return `user=${user}\x01auth=Bearer ${token}\x01\x01`;
}
