/** The site configuration, with the key names of the product's admin docs (Sourcegraph's "SMTP and email delivery" admin documentation; docs/architecture.md). */
/**
 * How the mailer gets an access token for `authentication: "XOAUTH2"`. The grant:
 * - `client_credentials`: the app's own token (Microsoft 365), authenticated with `clientSecret`,
 *   or with a JWT signed by `privateKey` (private_key_jwt, Microsoft's certificate credentials).
 * - `refresh_token`: a long-lived `refreshToken` an admin obtained once (Google and others).
 * - `jwt_bearer`: a JWT assertion (RFC 7523) signed by `privateKey`, issued by `clientID` for the
 *   mailbox `username` (a Google service account with domain-wide delegation).
 */
export interface SmtpOAuth2Config {
  tokenURL: string;
  clientID: string;
  clientSecret?: string;
  scope?: string;
  grant: 'client_credentials' | 'refresh_token' | 'jwt_bearer';
  refreshToken?: string;
  /** PEM (PKCS#8) RSA key; signs RS256. */
  privateKey?: string;
  /** `kid` of the signing key (Google: the service account's private_key_id). */
  keyID?: string;
  /**
   * SHA-1 thumbprint of the certificate of `privateKey` (hex as the Entra portal shows it, or
   * base64url), sent as the `x5t` header Microsoft's certificate credentials require.
   */
  certificateThumbprint?: string;
}

export interface SmtpConfig {
  authentication: 'PLAIN' | 'CRAM-MD5' | 'LOGIN' | 'XOAUTH2' | 'none';
  username?: string;
  password?: string;
  /** Required with `authentication: "XOAUTH2"`. */
  oauth2?: SmtpOAuth2Config;
  host: string;
  port: number;
  domain?: string;
  noVerifyTLS: boolean;
  /** Caps sending across all the worker's connections; unset means no cap beyond the pool size. */
  maxMessagesPerSecond?: number;
}

/**
 * DKIM signing of every email (RFC 6376, rsa-sha256, relaxed/relaxed), by nodemailer. The public
 * key is published at `<keySelector>._domainkey.<domainName>`; `domainName` should be the From
 * address's domain or a parent of it, so DMARC finds the signature aligned.
 */
export interface DkimConfig {
  domainName: string;
  keySelector: string;
  /** PEM RSA private key (PKCS#8 or PKCS#1). A secret: REDACTED wherever the config is shown. */
  privateKey: string;
}

export interface AuthProvider {
  type: string;
  [key: string]: unknown;
}

export interface SiteConfig {
  externalURL: string;
  'email.senderName'?: string;
  'email.address'?: string;
  'email.smtp'?: SmtpConfig;
  /** Optional: sign every email with DKIM. */
  'email.dkim'?: DkimConfig;
  /** Hours a delivery is retried before it fails (default 120); a link's expiry stops it sooner. */
  'email.delivery.maxAgeHours'?: number;
  /** Days the delivery log keeps a finished delivery and its attempts (default 90). */
  'email.delivery.retentionDays'?: number;
  /** The accounts topic's retention in hours (default 168): how long processed event ids are kept. */
  'kafka.topicRetentionHours'?: number;
  'auth.providers': AuthProvider[];
}
