import { createPrivateKey } from 'node:crypto';
import { canonicalEmailAddress, EMAIL_ADDRESS_FORMAT, parseEmailAddress } from '@sitemail/contracts';
import { type ParseError, parse as parseJsonc, printParseErrorCode } from 'jsonc-parser';
import Type, { type TSchema } from 'typebox';
import { Compile } from 'typebox/compile';
import { OAuth2Schema, oauth2Issues } from './oauth2-config.ts';
import type { AuthProvider, SiteConfig, SmtpConfig } from './types.ts';

/** The product name, used as the sender name when `email.senderName` is absent. */
export const DEFAULT_SENDER_NAME = 'Sitemail';

export interface SiteConfigIssue {
  /** The key as the admin docs spell it, e.g. `email.smtp.port` or `auth.providers[1].type`. */
  key: string;
  message: string;
}

/**
 * An invalid site config. The message names every key and its problem and never quotes a value,
 * so it can go to logs and API responses without leaking the SMTP password.
 */
export class SiteConfigError extends Error {
  readonly issues: SiteConfigIssue[];
  constructor(issues: SiteConfigIssue[], context?: string) {
    const where = context ? ` (${context})` : '';
    super(
      `invalid site config${where}: ${issues.map((i) => (i.key ? `${i.key}: ${i.message}` : i.message)).join('; ')}`,
    );
    this.name = 'SiteConfigError';
    this.issues = issues;
  }
}

// `problem` is this package's annotation: the message an admin reads for any failure at that key,
// instead of the validator's generic "must be >= 1".
const NoLineBreaks = '^[^\\r\\n]*$';
const ADDRESS_PROBLEM = 'must be an email address such as noreply@example.com';

const DKIM_KEY_PROBLEM =
  'must be an RSA private key in PEM ("-----BEGIN PRIVATE KEY-----" or "-----BEGIN RSA PRIVATE KEY-----")';

const SmtpSchema = Type.Object(
  {
    authentication: Type.Optional(
      Type.Union(
        [
          Type.Literal('PLAIN'),
          Type.Literal('CRAM-MD5'),
          Type.Literal('LOGIN'),
          Type.Literal('XOAUTH2'),
          Type.Literal('none'),
        ],
        { problem: 'must be one of "PLAIN", "CRAM-MD5", "LOGIN", "XOAUTH2", "none"' },
      ),
    ),
    username: Type.Optional(Type.String({ problem: 'must be a string' })),
    password: Type.Optional(Type.String({ problem: 'must be a string' })),
    oauth2: Type.Optional(OAuth2Schema),
    host: Type.String({ minLength: 1, pattern: '^[^\\s/]+$', problem: 'must be a host name or IP address' }),
    port: Type.Integer({ minimum: 1, maximum: 65535, problem: 'must be an integer from 1 to 65535' }),
    domain: Type.Optional(
      Type.String({
        minLength: 1,
        pattern: '^[^\\s/]+$',
        problem: 'must be a host name (sent in EHLO/HELO)',
      }),
    ),
    noVerifyTLS: Type.Optional(Type.Boolean({ problem: 'must be true or false' })),
    maxMessagesPerSecond: Type.Optional(
      Type.Number({ exclusiveMinimum: 0, problem: 'must be a positive number (emails per second)' }),
    ),
  },
  // A typo such as "pasword" must not silently leave a setting at its default.
  { additionalProperties: false, problem: 'must be an object' },
);

const DOMAIN_PROBLEM = 'must be a domain name such as example.com (the d= of the signature)';
const DkimSchema = Type.Object(
  {
    domainName: Type.String({
      minLength: 1,
      maxLength: 253,
      pattern: '^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$',
      problem: DOMAIN_PROBLEM,
    }),
    keySelector: Type.String({
      minLength: 1,
      maxLength: 63,
      pattern: '^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?$',
      problem: 'must be a selector such as "mail" (the DNS name <keySelector>._domainkey.<domainName>)',
    }),
    privateKey: Type.String({ minLength: 1, problem: DKIM_KEY_PROBLEM }),
  },
  {
    additionalProperties: false,
    problem: 'must be an object with domainName, keySelector and privateKey',
  },
);

/** The validated shape of the site config keys this product reads. Other keys are allowed and kept. */
export const SiteConfigSchema = Type.Object(
  {
    externalURL: Type.String({ minLength: 1, problem: 'must be an absolute http(s) URL' }),
    'email.senderName': Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 200,
        pattern: NoLineBreaks,
        problem: 'must be a one-line name',
      }),
    ),
    // the product's one address grammar (contracts); the problem is refined by parseEmailAddress below
    'email.address': Type.Optional(
      Type.String({ format: EMAIL_ADDRESS_FORMAT, maxLength: 254, problem: ADDRESS_PROBLEM }),
    ),
    'email.smtp': Type.Optional(SmtpSchema),
    // DKIM signing of every email (nodemailer's dkim option); privateKey is a secret
    'email.dkim': Type.Optional(DkimSchema),
    // true: the mailer refuses private and loopback destinations too (link-local and cloud
    // metadata addresses are refused always); see the notifications README
    'email.smtp.denyPrivateNetworks': Type.Optional(Type.Boolean({ problem: 'must be true or false' })),
    // How long a delivery is retried (4xx replies, connection failures) before it fails with the
    // last reply; emails carrying a link stop sooner, when the link expires. Default 120 (5 days,
    // as Postfix's maximal_queue_lifetime); at most 720 (30 days): later, a product email is stale.
    'email.delivery.maxAgeHours': Type.Optional(
      Type.Number({
        exclusiveMinimum: 0,
        maximum: 720,
        problem: 'must be a number of hours greater than 0 and at most 720 (30 days)',
      }),
    ),
    // How long the delivery log keeps a finished delivery (sent, failed, suppressed) and its
    // attempts before the retention job purges them, in days. Default 90.
    'email.delivery.retentionDays': Type.Optional(
      Type.Number({
        exclusiveMinimum: 0,
        maximum: 3650,
        problem: 'must be a number of days greater than 0 and at most 3650 (10 years)',
      }),
    ),
    // The accounts topic's retention (Kafka retention.ms), in hours. Default 168 (Kafka's 7 days).
    // Notifications keeps each processed event's id this long to recognise a redelivery; no copy
    // of an older event can arrive. Set it to at least the topic's retention.
    'kafka.topicRetentionHours': Type.Optional(
      Type.Number({
        exclusiveMinimum: 0,
        problem: "must be a number of hours greater than 0 (the topic's retention.ms in hours)",
      }),
    ),
    'auth.providers': Type.Optional(
      Type.Array(
        Type.Object(
          {
            type: Type.String({
              minLength: 1,
              problem: 'must be a provider type such as "builtin" or "github"',
            }),
          },
          { additionalProperties: true, problem: 'must be an object with a "type"' },
        ),
        { problem: 'must be a list of auth providers' },
      ),
    ),
  },
  { additionalProperties: true, problem: 'must be an object' },
);

const validator = Compile(SiteConfigSchema);

/** Parses the JSONC text of a site config file and validates it; throws `SiteConfigError`. */
export function parseSiteConfig(text: string): SiteConfig {
  if (text.trim() === '') throw new SiteConfigError([{ key: '', message: 'the file is empty' }]);
  const errors: ParseError[] = [];
  const value: unknown = parseJsonc(text, errors, { allowTrailingComma: true, disallowComments: false });
  if (errors.length > 0) {
    throw new SiteConfigError(
      errors.slice(0, 5).map((e) => {
        const { line, column } = lineAndColumn(text, e.offset);
        return {
          key: '',
          message: `JSON syntax error at line ${line}, column ${column}: ${printParseErrorCode(e.error)}`,
        };
      }),
    );
  }
  if (value === undefined) throw new SiteConfigError([{ key: '', message: 'the file is empty' }]);
  return validateSiteConfig(value);
}

/** Validates an already-parsed site config and applies the defaults; throws `SiteConfigError`. */
export function validateSiteConfig(value: unknown): SiteConfig {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new SiteConfigError([{ key: '', message: 'the top level must be an object' }]);
  }
  const issues: SiteConfigIssue[] = [];
  const seen = new Set<string>();
  const add = (issue: SiteConfigIssue) => {
    if (seen.has(issue.key)) return;
    seen.add(issue.key);
    issues.push(issue);
  };
  if (!validator.Check(value)) {
    for (const error of validator.Errors(value)) {
      const segments = pointerSegments(error.instancePath);
      const params = error.params as { requiredProperties?: string[]; additionalProperties?: string[] };
      if (error.keyword === 'required') {
        for (const prop of params.requiredProperties ?? [])
          add({ key: keyOf([...segments, prop]), message: 'is required' });
      } else if (error.keyword === 'additionalProperties') {
        const allowed = Object.keys((schemaAt(segments) as { properties?: object })?.properties ?? {});
        for (const prop of params.additionalProperties ?? []) {
          add({
            key: keyOf([...segments, prop]),
            message: `is not a known key (known: ${allowed.join(', ')})`,
          });
        }
      } else if (error.keyword === 'boolean') {
        // `additionalProperties: false` also reports each extra key this way; reported above.
      } else {
        const problem = (schemaAt(segments) as { problem?: string } | undefined)?.problem ?? error.message;
        add({ key: keyOf(segments), message: problem });
      }
    }
  }
  const raw = value as Record<string, unknown>;
  if (!seen.has('externalURL') && typeof raw.externalURL === 'string' && !isHttpUrl(raw.externalURL)) {
    add({ key: 'externalURL', message: 'must be an absolute http(s) URL' });
  }
  const address = raw['email.address'];
  if (seen.has('email.address') && typeof address === 'string') {
    const parsed = parseEmailAddress(address);
    const issue = issues.find((i) => i.key === 'email.address');
    if (issue && !parsed.ok) issue.message = `${ADDRESS_PROBLEM} (${parsed.problem})`;
  }
  const smtp = raw['email.smtp'] as Record<string, unknown> | undefined;
  if (smtp && typeof smtp === 'object') {
    const authentication = smtp.authentication ?? 'PLAIN';
    if (authentication === 'LOGIN' || authentication === 'PLAIN' || authentication === 'CRAM-MD5') {
      for (const k of ['username', 'password'] as const) {
        if (smtp[k] === undefined || smtp[k] === '') {
          add({ key: `email.smtp.${k}`, message: `is required when authentication is ${authentication}` });
        }
      }
    }
    if (authentication === 'XOAUTH2') oauth2Issues(smtp).forEach(add);
  }
  const dkim = raw['email.dkim'] as { privateKey?: unknown } | undefined;
  if (dkim && typeof dkim.privateKey === 'string' && !seen.has('email.dkim.privateKey')) {
    const problem = dkimKeyProblem(dkim.privateKey);
    if (problem) add({ key: 'email.dkim.privateKey', message: problem });
  }
  if (issues.length > 0) throw new SiteConfigError(issues);
  return withDefaults(raw);
}

/**
 * Whether the DKIM key can sign: checked when the config is read, so a bad key is an error naming
 * the key, not emails silently sent unsigned (nodemailer sends unsigned when signing fails). The
 * message never quotes the key.
 */
function dkimKeyProblem(pem: string): string | undefined {
  let key: ReturnType<typeof createPrivateKey>;
  try {
    key = createPrivateKey({ key: pem, format: 'pem' });
  } catch {
    return DKIM_KEY_PROBLEM;
  }
  if (key.asymmetricKeyType !== 'rsa') {
    return `must be an RSA private key (nodemailer signs rsa-sha256), not ${key.asymmetricKeyType ?? 'another kind'}`;
  }
  const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
  // RFC 8301: verifiers must not accept keys under 1024 bits; 2048 is the recommended size
  if (bits < 1024) return `must be an RSA key of at least 1024 bits (2048 recommended), not ${bits}`;
  return undefined;
}

function withDefaults(raw: Record<string, unknown>): SiteConfig {
  const config = structuredClone(raw) as Record<string, unknown>;
  // one spelling of the From address: IDN domains as A-labels, the form relays route by
  if (typeof config['email.address'] === 'string') {
    config['email.address'] = canonicalEmailAddress(config['email.address']);
  }
  const smtp = config['email.smtp'] as Partial<SmtpConfig> | undefined;
  if (smtp) {
    smtp.authentication ??= 'PLAIN';
    smtp.noVerifyTLS ??= false;
  }
  if (config['auth.providers'] === undefined)
    config['auth.providers'] = [{ type: 'builtin' }] satisfies AuthProvider[];
  return config as unknown as SiteConfig;
}

function isHttpUrl(s: string): boolean {
  try {
    const url = new URL(s);
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.host !== '';
  } catch {
    return false;
  }
}

function pointerSegments(pointer: string): string[] {
  if (pointer === '') return [];
  return pointer
    .split('/')
    .slice(1)
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

/** `['email.smtp', 'port']` → `email.smtp.port`; `['auth.providers', '1', 'type']` → `auth.providers[1].type`. */
function keyOf(segments: string[]): string {
  let key = '';
  for (const s of segments) {
    if (/^\d+$/.test(s)) key += `[${s}]`;
    else key += key === '' ? s : `.${s}`;
  }
  return key;
}

function schemaAt(segments: string[]): TSchema | undefined {
  let schema: unknown = SiteConfigSchema;
  for (const s of segments) {
    const node = schema as { properties?: Record<string, unknown>; items?: unknown } | undefined;
    if (node?.properties && s in node.properties) schema = node.properties[s];
    else if (node?.items && /^\d+$/.test(s)) schema = node.items;
    else return undefined;
  }
  return schema as TSchema;
}

function lineAndColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, column: offset - lineStart + 1 };
}
