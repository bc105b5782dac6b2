import { isIP } from 'node:net';
import { join, resolve } from 'node:path';
import type { LinkTokenKey } from '@sitemail/contracts';
import { loadLinkTokenKey } from '@sitemail/site-config';
import { type LogLevel, logLevels } from './logger.ts';

/** One or more environment variables with bad values; the message names each and its problem. */
export class EnvError extends Error {
  constructor(readonly issues: string[]) {
    super(issues.join('; '));
    this.name = 'EnvError';
  }
}

/** How to read one variable: its name, and a parser that throws a message saying what is wrong. */
export interface EnvVar<T> {
  name: string;
  read(raw: string | undefined): T;
  /** Never echo the value in a message (keys, passwords). */
  secret?: boolean;
}

type Values<S extends Record<string, EnvVar<unknown>>> = { [K in keyof S]: ReturnType<S[K]['read']> };

const unset = (raw: string | undefined): raw is undefined => raw === undefined || raw.trim() === '';

/** Variable readers. Unset and empty are the same: the default applies. */
export const envVar = {
  port: (name: string, fallback: number): EnvVar<number> => ({
    name,
    read(raw) {
      if (unset(raw)) return fallback;
      const value = Number(raw.trim());
      if (!/^\d+$/.test(raw.trim()) || value > 65535)
        throw new Error('must be a port number from 0 to 65535');
      return value;
    },
  }),
  number: (name: string, opts: { min?: number; max?: number; integer?: boolean }) => {
    const reader: EnvVar<number | undefined> = {
      name,
      read(raw) {
        if (unset(raw)) return undefined;
        const value = Number(raw.trim());
        const bounds = [
          opts.min === undefined ? '' : ` >= ${opts.min}`,
          opts.max === undefined ? '' : ` <= ${opts.max}`,
        ].join('');
        const what = `must be ${opts.integer ? 'an integer' : 'a number'}${bounds}`;
        if (!Number.isFinite(value) || (opts.integer && !Number.isInteger(value))) throw new Error(what);
        if ((opts.min !== undefined && value < opts.min) || (opts.max !== undefined && value > opts.max))
          throw new Error(what);
        return value;
      },
    };
    return reader;
  },
  string: (name: string, fallback: string): EnvVar<string> => ({
    name,
    read: (raw) => (unset(raw) ? fallback : raw.trim()),
  }),
  optionalString: (name: string): EnvVar<string | undefined> => ({
    name,
    read: (raw) => (unset(raw) ? undefined : raw.trim()),
  }),
  oneOf: <T extends string>(name: string, values: readonly T[], fallback: T): EnvVar<T> => ({
    name,
    read(raw) {
      if (unset(raw)) return fallback;
      const value = raw.trim().toLowerCase() as T;
      if (!values.includes(value)) throw new Error(`must be one of ${values.join(', ')}`);
      return value;
    },
  }),
  /** Comma-separated; undefined when unset or only commas. */
  list: (name: string): EnvVar<string[] | undefined> => ({
    name,
    read(raw) {
      const items = (raw ?? '')
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);
      return items.length > 0 ? items : undefined;
    },
  }),
  trustProxy: (name: string): EnvVar<TrustProxy> => ({ name, read: parseTrustProxy }),
};

/** Fastify's `trustProxy`: false (no proxy trusted), true (any), a hop count, or addresses/CIDRs. */
export type TrustProxy = boolean | number | string[];

function isAddressOrCidr(item: string): boolean {
  const [address = '', prefix, ...rest] = item.split('/');
  const family = isIP(address);
  if (family === 0 || rest.length > 0) return false;
  if (prefix === undefined) return true;
  const bits = Number(prefix);
  return /^\d+$/.test(prefix) && bits <= (family === 4 ? 32 : 128);
}

export function parseTrustProxy(raw: string | undefined): TrustProxy {
  if (unset(raw) || raw.trim().toLowerCase() === 'false') return false;
  const value = raw.trim();
  if (value.toLowerCase() === 'true') return true;
  if (/^\d+$/.test(value)) return Number(value);
  const items = value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const bad = items.filter((item) => !isAddressOrCidr(item));
  if (bad.length > 0) {
    throw new Error(
      `must be true, false, a hop count, or comma-separated addresses/CIDRs (not an address: ${bad.join(', ')})`,
    );
  }
  return items;
}

/** Reads every variable of `spec`, then fails once naming each bad one (`PORT must be ..., not "x"`). */
export function readEnv<S extends Record<string, EnvVar<unknown>>>(
  source: Record<string, string | undefined>,
  spec: S,
): Values<S> {
  const issues: string[] = [];
  const values: Record<string, unknown> = {};
  for (const [key, variable] of Object.entries(spec)) {
    const raw = source[variable.name];
    try {
      values[key] = variable.read(raw);
    } catch (err) {
      const why = err instanceof Error ? err.message : String(err);
      issues.push(`${variable.name} ${why}${variable.secret ? '' : `, not "${raw}"`}`);
    }
  }
  if (issues.length > 0) throw new EnvError(issues);
  return values as Values<S>;
}

export interface ServiceEnv {
  host: string;
  dataDir: string;
  /** Postgres when set; unset: PGlite under `dataDir`. */
  databaseUrl: string | undefined;
  /** Kafka when set; unset: the in-process bus under `dataDir`. */
  kafkaBrokers: string[] | undefined;
  siteConfigPath: string;
  logLevel: LogLevel;
  trustProxy: TrustProxy;
  linkTokenKey: LinkTokenKey;
  /**
   * `openDatabase` options for one service's schema. Embedded: one PGlite in `<dataDir>/pglite`
   * shared by the services of the process, a schema each (`legacyDataDir`: where an older version
   * kept this service's own PGlite, used as it is when present).
   */
  database(
    schema: string,
  ): { url: string; schema: string } | { dataDir: string; schema: string; legacyDataDir: string };
}

/**
 * The variables both services and `npm start` share, plus a service's own (`extra`, e.g.
 * `{ port: envVar.port('PORT', 3001) }`). Every problem is reported at once, before anything is
 * opened; LINK_TOKEN_KEY's value is never part of a message.
 */
export function readServiceEnv<S extends Record<string, EnvVar<unknown>>>(
  source: Record<string, string | undefined>,
  opts: { root: string; extra?: S },
): ServiceEnv & Values<S> {
  const common = {
    host: envVar.string('HOST', '127.0.0.1'),
    dataDir: envVar.string('DATA_DIR', join(opts.root, '.data')),
    databaseUrl: envVar.optionalString('DATABASE_URL'),
    kafkaBrokers: envVar.list('KAFKA_BROKERS'),
    siteConfigPath: envVar.string('SITE_CONFIG', join(opts.root, 'config/site-config.jsonc')),
    logLevel: envVar.oneOf('LOG_LEVEL', logLevels, 'info'),
    trustProxy: envVar.trustProxy('TRUST_PROXY'),
  };
  const issues: string[] = [];
  let values: Values<typeof common> & Values<S> = {} as Values<typeof common> & Values<S>;
  try {
    values = readEnv(source, { ...common, ...opts.extra }) as typeof values;
  } catch (err) {
    if (!(err instanceof EnvError)) throw err;
    issues.push(...err.issues);
  }
  let linkTokenKey: LinkTokenKey | undefined;
  if (issues.length === 0) {
    try {
      linkTokenKey = loadLinkTokenKey({
        value: unset(source.LINK_TOKEN_KEY) ? undefined : source.LINK_TOKEN_KEY!.trim(),
        withKafka: values.kafkaBrokers !== undefined,
        dataDir: resolve(values.dataDir),
      });
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      const key = source.LINK_TOKEN_KEY?.trim();
      issues.push(key ? message.replaceAll(key, 'REDACTED') : message);
    }
  }
  if (issues.length > 0 || !linkTokenKey) throw new EnvError(issues);
  const dataDir = resolve(values.dataDir);
  const databaseUrl = values.databaseUrl;
  return {
    ...values,
    dataDir,
    siteConfigPath: resolve(values.siteConfigPath),
    linkTokenKey,
    database: (schema: string) =>
      databaseUrl
        ? { url: databaseUrl, schema }
        : { dataDir: join(dataDir, 'pglite'), schema, legacyDataDir: join(dataDir, schema) },
  };
}
