import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';

export interface ScryptCost {
  N: number;
  r: number;
  p: number;
}

/**
 * The least-memory scrypt option of OWASP's password storage cheat sheet (N = 2^13, r = 8,
 * p = 10: 8 MiB per hash, of the strength of their N = 2^15, r = 8, p = 3 at 32 MiB). Measured
 * here: 162 ms of CPU per hash against 325 ms for 2^15/8/3. Each hash records its own
 * parameters, so stored 2^15/8/3 hashes keep verifying and the default can change without
 * invalidating passwords. Tests lower it (the `passwordCost` option) to keep suites fast.
 */
export const DEFAULT_SCRYPT_COST: ScryptCost = { N: 2 ** 13, r: 8, p: 10 };
const KEY_LENGTH = 32;

/**
 * At most this many derivations run at once; the rest wait their turn (queued, never refused:
 * the rate limits refuse abuse). This bounds the memory hashing uses outside V8 (2 × 8 MiB)
 * whatever the request rate, and leaves the rest of libuv's pool (4 threads) to DNS and fs.
 * glibc may keep a freed 8 MiB in each pool thread's arena (up to 4 × 8 MiB, reused, not
 * growing) unless MALLOC_MMAP_THRESHOLD_ is set: 8 hashes at once measured +32 MB RSS without
 * it, +16 MB with it, against +128 MB for 2^15/8/3 before this bound.
 */
export const MAX_CONCURRENT_HASHES = 2;

/**
 * What a stored hash may ask for: up to OWASP's 64 MiB option (N = 2^16, r = 8, p = 2, which
 * OpenSSL counts as 64 MiB + 130 KiB) and 4 times the work of OWASP's options (N·r·p ≤ 2^22).
 * A row asking for more (corrupted, or written by someone hostile) fails verification before
 * anything is allocated or queued, so it cannot exhaust the process's memory or hold a hashing
 * slot for minutes.
 */
export const MAX_SCRYPT_MEMORY = 65 * 1024 * 1024;
const MAX_SCRYPT_WORK = 2 ** 22;

/** The bytes OpenSSL allocates for one derivation (its `maxmem` check): V is 128·r·(N+2), B is 128·r·p. */
const scryptMemory = ({ N, r, p }: ScryptCost) => 128 * r * (N + 2) + 128 * r * p;

const withinLimits = (cost: ScryptCost): boolean =>
  Number.isSafeInteger(cost.N) &&
  Number.isSafeInteger(cost.r) &&
  Number.isSafeInteger(cost.p) &&
  cost.N > 1 &&
  (cost.N & (cost.N - 1)) === 0 &&
  cost.r >= 1 &&
  cost.p >= 1 &&
  cost.N * cost.r * cost.p <= MAX_SCRYPT_WORK &&
  scryptMemory(cost) <= MAX_SCRYPT_MEMORY;

let running = 0;
const waiting: Array<() => void> = [];

/** Runs `work` in one of the MAX_CONCURRENT_HASHES slots, first come first served. */
async function inHashingSlot<T>(work: () => Promise<T>): Promise<T> {
  if (running < MAX_CONCURRENT_HASHES) running++;
  else await new Promise<void>((resolve) => waiting.push(resolve)); // the finisher hands its slot over
  try {
    return await work();
  } finally {
    const next = waiting.shift();
    if (next) next();
    else running--;
  }
}

const derive = (password: string, salt: Buffer, keylen: number, cost: ScryptCost) =>
  inHashingSlot(
    () =>
      new Promise<Buffer>((resolve, reject) =>
        scrypt(
          password.normalize('NFKC'),
          salt,
          keylen,
          { ...cost, maxmem: MAX_SCRYPT_MEMORY },
          (err, key) => (err ? reject(err) : resolve(key)),
        ),
      ),
  );

/** `scrypt$N$r$p$salt$hash` (base64url): the only form a password is ever stored in. */
export async function hashPassword(
  password: string,
  cost: ScryptCost = DEFAULT_SCRYPT_COST,
): Promise<string> {
  if (!withinLimits(cost)) throw new RangeError('scrypt cost outside what verifyPassword accepts');
  const salt = randomBytes(16);
  const key = await derive(password, salt, KEY_LENGTH, cost);
  return ['scrypt', cost.N, cost.r, cost.p, salt.toString('base64url'), key.toString('base64url')].join('$');
}

const DECIMAL = /^[1-9][0-9]{0,15}$/;

/**
 * Whether `password` matches a stored hash, with the hash's own parameters. False also for a
 * malformed hash and for one asking for more than MAX_SCRYPT_MEMORY or MAX_SCRYPT_WORK (checked
 * before any memory is taken).
 */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const [scheme, n, r, p, salt, hash, ...rest] = stored.split('$');
  if (scheme !== 'scrypt' || !n || !r || !p || !salt || !hash || rest.length > 0) return false;
  if (!DECIMAL.test(n) || !DECIMAL.test(r) || !DECIMAL.test(p)) return false;
  const cost = { N: Number(n), r: Number(r), p: Number(p) };
  const expected = Buffer.from(hash, 'base64url');
  if (!withinLimits(cost) || expected.length < 16 || expected.length > 64) return false;
  const actual = await derive(password, Buffer.from(salt, 'base64url'), expected.length, cost);
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}
