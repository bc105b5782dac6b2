/**
 * JSON Schema (as the services publish it in their OpenAPI documents) → fast-check arbitraries:
 * `validFor` draws values the schema accepts (or very nearly: a pattern fast-check cannot build
 * is approximated), `hostileValue` draws what a careless or malicious client sends instead.
 * Small on purpose: only the keywords the two documents use, plus the common ones around them.
 */
import fc from 'fast-check';

export type Schema = {
  $ref?: string;
  type?: string | string[];
  format?: string;
  pattern?: string;
  enum?: unknown[];
  const?: unknown;
  anyOf?: Schema[];
  oneOf?: Schema[];
  allOf?: Schema[];
  properties?: Record<string, Schema>;
  required?: string[];
  additionalProperties?: boolean | Schema;
  items?: Schema;
  minItems?: number;
  maxItems?: number;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  nullable?: boolean;
  [key: string]: unknown;
};

/** `#/components/schemas/X` (and any other local JSON pointer) inside `root`. */
export function resolveRef(schema: Schema, root: unknown): Schema {
  let s = schema;
  for (let hops = 0; s.$ref !== undefined; hops++) {
    if (hops > 32 || !s.$ref.startsWith('#/')) throw new Error(`cannot resolve $ref ${s.$ref}`);
    let node: unknown = root;
    for (const part of s.$ref.slice(2).split('/')) {
      const key = part.replace(/~1/g, '/').replace(/~0/g, '~');
      node = (node as Record<string, unknown> | undefined)?.[key];
    }
    if (!node || typeof node !== 'object') throw new Error(`$ref ${s.$ref} points at nothing`);
    s = node as Schema;
  }
  return s;
}

const word = fc.stringMatching(/^[a-z][a-z0-9]{0,11}$/);

/** Mostly plain addresses (what real users type), sometimes fast-check's RFC-shaped oddities. */
const emailArb = fc.oneof(
  { weight: 4, arbitrary: fc.tuple(word, word).map(([l, d]) => `${l}@${d}.fuzz.example`) },
  { weight: 1, arbitrary: fc.emailAddress() },
);

function stringFor(s: Schema): fc.Arbitrary<string> {
  const minLength = s.minLength ?? 0;
  const maxLength = s.maxLength ?? 64;
  const fits = (v: string) => v.length >= minLength && v.length <= maxLength;
  let base: fc.Arbitrary<string>;
  switch (s.format) {
    case 'email':
      base = emailArb;
      break;
    case 'uuid':
      base = fc.uuid();
      break;
    case 'date-time':
      base = fc
        .date({ min: new Date('2000-01-01'), max: new Date('2100-01-01'), noInvalidDate: true })
        .map((d) => d.toISOString());
      break;
    case 'uri':
      base = word.map((w) => `https://${w}.fuzz.example/`);
      break;
    default:
      base = s.pattern
        ? patternString(s.pattern, minLength, Math.min(maxLength, 64))
        : fc.string({ minLength, maxLength: Math.min(maxLength, Math.max(minLength, 40)) });
  }
  return base.filter(fits);
}

/**
 * fast-check builds strings from most regular expressions; for those it cannot (lookahead, as in
 * the username rule) short alphanumeric words that happen to match stand in.
 */
function patternString(pattern: string, minLength: number, maxLength: number): fc.Arbitrary<string> {
  const re = new RegExp(pattern, 'u');
  try {
    const built = fc.stringMatching(re);
    fc.sample(built, { numRuns: 1, seed: 1 });
    return built;
  } catch {
    const len = Math.max(1, minLength);
    return fc
      .stringMatching(new RegExp(`^[a-z0-9]{${len},${Math.max(len, Math.min(maxLength, 16))}}$`))
      .filter((v) => re.test(v));
  }
}

function numberFor(s: Schema, integer: boolean): fc.Arbitrary<number> {
  const min =
    s.exclusiveMinimum !== undefined ? s.exclusiveMinimum + (integer ? 1 : Number.EPSILON) : s.minimum;
  const max =
    s.exclusiveMaximum !== undefined ? s.exclusiveMaximum - (integer ? 1 : Number.EPSILON) : s.maximum;
  if (integer) {
    return fc.integer({
      min: min ?? Number.MIN_SAFE_INTEGER,
      max: max ?? Number.MAX_SAFE_INTEGER,
    });
  }
  return fc.double({ min: min ?? -1e12, max: max ?? 1e12, noNaN: true, noDefaultInfinity: true });
}

/** Values the schema accepts. */
export function validFor(schema: Schema, root: unknown, depth = 0): fc.Arbitrary<unknown> {
  const s = resolveRef(schema, root);
  if (depth > 8) return fc.constant(null);
  if (s.const !== undefined) return fc.constant(s.const);
  if (s.enum) return fc.constantFrom(...s.enum);
  if (s.anyOf) return fc.oneof(...s.anyOf.map((x) => validFor(x, root, depth + 1)));
  if (s.oneOf) return fc.oneof(...s.oneOf.map((x) => validFor(x, root, depth + 1)));
  if (s.allOf) {
    // Merged shallowly: enough for the "object extended by object" use of allOf.
    const merged: Schema = {};
    for (const part of s.allOf.map((x) => resolveRef(x, root))) {
      Object.assign(merged, part, {
        properties: { ...merged.properties, ...part.properties },
        required: [...(merged.required ?? []), ...(part.required ?? [])],
      });
    }
    delete merged.allOf;
    return validFor(merged, root, depth + 1);
  }
  const types = Array.isArray(s.type) ? s.type : s.type ? [s.type] : [];
  if (types.length > 1) return fc.oneof(...types.map((t) => validFor({ ...s, type: t }, root, depth + 1)));
  const orNull = (a: fc.Arbitrary<unknown>) => (s.nullable ? fc.option(a, { nil: null }) : a);
  switch (types[0]) {
    case 'string':
      return orNull(stringFor(s));
    case 'integer':
      return orNull(numberFor(s, true));
    case 'number':
      return orNull(numberFor(s, false));
    case 'boolean':
      return orNull(fc.boolean());
    case 'null':
      return fc.constant(null);
    case 'array':
      return orNull(
        fc.array(s.items ? validFor(s.items, root, depth + 1) : fc.jsonValue({ maxDepth: 1 }), {
          minLength: s.minItems ?? 0,
          maxLength: Math.min(s.maxItems ?? 4, 4),
        }),
      );
    case 'object':
      return orNull(objectFor(s, root, depth));
    default:
      return s.properties ? objectFor(s, root, depth) : fc.jsonValue({ maxDepth: 2 });
  }
}

function objectFor(s: Schema, root: unknown, depth: number): fc.Arbitrary<Record<string, unknown>> {
  const props = s.properties ?? {};
  const model: Record<string, fc.Arbitrary<unknown>> = {};
  for (const [k, v] of Object.entries(props)) model[k] = validFor(v, root, depth + 1);
  const known = fc.record(model, { requiredKeys: (s.required ?? []).filter((k) => k in props) });
  if (s.additionalProperties === false || s.additionalProperties === undefined) return known;
  const extra =
    s.additionalProperties === true
      ? fc.dictionary(word, fc.jsonValue({ maxDepth: 1 }), { maxKeys: 2 })
      : fc.dictionary(word, validFor(s.additionalProperties, root, depth + 1), { maxKeys: 2 });
  return fc.tuple(extra, known).map(([e, k]) => ({ ...e, ...k }));
}

// --- what a hostile client sends ------------------------------------------------------------

const INT64_MAX = '9223372036854775807';
/** Numbers at and beyond the limits a service stores them in (int32, int64, JS safe integers). */
export const boundaryNumberStrings = [
  '0',
  '-1',
  '2147483647',
  '2147483648',
  INT64_MAX,
  '9223372036854775808',
  '-9223372036854775808',
  '-9223372036854775809',
  '18446744073709551616',
  '99999999999999999999999999999999',
  '9007199254740993',
  '1e308',
  '1e309',
  '0x10',
  '1.5',
  'NaN',
  'Infinity',
];

const controlText = fc.string({
  unit: fc.constantFrom('\u0000', '\r', '\n', '\r\n', '\t', '\u0007', '\u001b', '\u007f', '\u0085', 'a'),
  minLength: 1,
  maxLength: 12,
});

/** Strings meant to break parsers, queries, templates, headers and length checks. */
export const hostileString: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(
    '',
    ' ',
    '\u0000',
    'a\u0000b',
    'x@fuzz.example\u0000y',
    'x@fuzz.example\r\nBcc: victim@fuzz.example',
    'subject\r\n\r\n<html>',
    '\ud800',
    '\udfff\ud800',
    '\u202etxt.exe',
    'zero\u200bwidth',
    '𝕏😀👨‍👩‍👧',
    'Ⅻ ǅ ß İ',
    '用户@例子.广告',
    'bücher@bücher.example',
    'a@b',
    '"a b"@fuzz.example',
    'a@[127.0.0.1]',
    'a@[IPv6:::1]',
    'a..b@fuzz.example',
    `${'l'.repeat(65)}@fuzz.example`,
    `a@${'d'.repeat(250)}.example`,
    'me',
    'REDACTED',
    '00000000-0000-0000-0000-000000000000',
    'FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF',
    '../../../../etc/passwd',
    '%00',
    '%zz',
    "' OR '1'='1' --",
    '"; DROP TABLE users; --',
    '<script>alert(1)</script>',
    '{{constructor.constructor("return process")()}}',
    ['$', '{7*7}', ' #{7*7}'].join(''),
    '__proto__',
    'null',
    'true',
    '[]',
    '{}',
    ...boundaryNumberStrings,
  ),
  controlText,
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  fc.constantFrom(257, 1_000, 65_536, 300_000).map((n) => 'a'.repeat(n)),
);

/** A nested array or object `depth` levels deep (as a value, so it is serialised like any other). */
export function nested(depth: number, kind: 'array' | 'object'): unknown {
  let v: unknown = 1;
  for (let i = 0; i < depth; i++) v = kind === 'array' ? [v] : { a: v };
  return v;
}

/** Any JSON value of the wrong kind or at a limit: strings above, numbers, types, nesting. */
export const hostileValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 5, arbitrary: hostileString },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      0,
      -1,
      -0,
      1.5,
      2 ** 31,
      2 ** 53,
      2 ** 53 + 2,
      2 ** 63,
      2 ** 64,
      -(2 ** 63),
      1e308,
      Number.MIN_VALUE,
    ),
  },
  { weight: 1, arbitrary: fc.double().filter(Number.isFinite) },
  { weight: 2, arbitrary: fc.constantFrom<unknown>(null, true, false, [], {}, [''], { '': '' }, [null]) },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.constantFrom(20, 200, 1_000), fc.constantFrom<'array' | 'object'>('array', 'object'))
      .map(([d, k]) => nested(d, k)),
  },
);

/** Bodies that are not JSON (or not the JSON they claim to be), sent as raw text. */
export const malformedJson: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(
    '',
    '{',
    '{"',
    '{"a":',
    '{"a":1,}',
    "{'a':1}",
    '[1,2',
    'null',
    'undefined',
    'NaN',
    '"just a string"',
    '\ufeff{}',
    '{"a":1}{"b":2}',
    '{"__proto__":{"isAdmin":true}}',
    '{"constructor":{"prototype":{"polluted":true}}}',
    '{"a":"\\ud800"}',
    '{"a":"\\u0000"}',
    '{"a":1e999999}',
    `{"n":${'9'.repeat(400)}}`,
    `${'['.repeat(100_000)}${']'.repeat(100_000)}`,
    `${'{"a":'.repeat(20_000)}1${'}'.repeat(20_000)}`,
    '\u0000\u0000\u0000',
  ),
  fc.string({ unit: 'binary', maxLength: 60 }),
);
