/**
 * Requests for every operation of an OpenAPI document, drawn with fast-check from the
 * operation's own schemas (path, query and header parameters, JSON body): valid ones, and ones
 * with one part made hostile.
 */
import fc from 'fast-check';
import { headerSafe, type RawRequest } from './raw-http.ts';
import {
  hostileString,
  hostileValue,
  malformedJson,
  resolveRef,
  type Schema,
  validFor,
} from './schema-arbitrary.ts';

export interface Parameter {
  name: string;
  in: 'path' | 'query' | 'header';
  required: boolean;
  schema: Schema;
}

export interface Operation {
  service: string;
  method: string;
  /** The OpenAPI path template, e.g. `/users/{userId}`. */
  path: string;
  parameters: Parameter[];
  body?: Schema;
  bodyRequired: boolean;
  /** The document, for `$ref`s. */
  root: unknown;
}

interface OpenApiOperation {
  parameters?: (Parameter & { $ref?: string })[];
  requestBody?: { required?: boolean; content?: Record<string, { schema?: Schema }> };
}

export function operationsOf(service: string, doc: { paths: Record<string, Record<string, unknown>> }) {
  const ops: Operation[] = [];
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, raw] of Object.entries(item)) {
      if (!['get', 'put', 'post', 'delete', 'patch'].includes(method)) continue;
      const op = raw as OpenApiOperation;
      const parameters = (op.parameters ?? []).map((p) => {
        const param = (p.$ref ? resolveRef(p as unknown as Schema, doc) : p) as Parameter;
        return { ...param, schema: param.schema ?? {}, required: param.required ?? param.in === 'path' };
      });
      const json = op.requestBody?.content?.['application/json']?.schema;
      ops.push({
        service,
        method: method.toUpperCase(),
        path,
        parameters: parameters.filter((p) => ['path', 'query', 'header'].includes(p.in)),
        ...(json ? { body: json } : {}),
        bodyRequired: op.requestBody?.required ?? false,
        root: doc,
      });
    }
  }
  return ops;
}

export const operationName = (op: { service: string; method: string; path: string }) =>
  `${op.service} ${op.method} ${op.path}`;

/** A regular expression matching the operation's concrete paths (query excluded). */
export function pathMatcher(template: string): RegExp {
  const source = template
    .split(/\{[^}]+\}/)
    .map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
    .join('[^/]+');
  return new RegExp(`^${source}$`);
}

/** Percent-encodes everything but unreserved characters, byte by byte (lone surrogates become U+FFFD). */
export function pctEncode(v: string): string {
  let out = '';
  for (const b of Buffer.from(v, 'utf8')) {
    const c = String.fromCharCode(b);
    out += /[A-Za-z0-9\-._~]/.test(c) ? c : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** Path segments sent as they are, not encoded: broken escapes, traversal, encoded slashes. */
const rawSegments = ['%', '%zz', '%00', '%0d%0a', '..', '.', '%2e%2e', '%2F', '%C0%AF', '%ff%fe', '%u0000'];

export interface Ingredients {
  /** Authorization variants by label; `undefined`: no header. */
  auths: fc.Arbitrary<{ label: string; header: string | undefined }>;
  /** Real values for a parameter or body field (existing user ids, addresses, key ids, ...). */
  known(op: Operation, name: string): unknown[];
  /** Rewrites a body before it is sent (the /test-email destination is forced to loopback). */
  sanitize(op: Operation, body: unknown): unknown;
}

export interface FuzzRequest extends RawRequest {
  op: Operation;
  auth: string;
  /** Which kind of request this is (valid, hostile-param, malformed, ...), for the report. */
  variant: string;
}

const asParamString = (v: unknown) => (typeof v === 'string' ? v : (JSON.stringify(v) ?? 'undefined'));

const contentTypes = fc.oneof(
  { weight: 12, arbitrary: fc.constant('application/json') },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      'application/json; charset=utf-8',
      'application/json; charset=utf-16',
      'text/plain',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=x',
      'application/problem+json',
      'application/xml',
      'application/json, text/plain',
      '',
      '*/*',
    ),
  },
);

function paramArb(op: Operation, p: Parameter, ing: Ingredients, hostile: boolean): fc.Arbitrary<string> {
  if (hostile) {
    const values = fc.oneof(hostileValue.map(asParamString), hostileString);
    return p.in === 'path'
      ? fc.oneof({ weight: 6, arbitrary: values }, fc.constantFrom(...rawSegments))
      : values;
  }
  const known = ing.known(op, p.name);
  const valid = validFor(p.schema, op.root).map(asParamString);
  return known.length ? fc.oneof(valid, fc.constantFrom(...known.map(asParamString))) : valid;
}

function bodyArb(op: Operation, ing: Ingredients): fc.Arbitrary<Record<string, unknown> | unknown> {
  if (!op.body) return fc.constant(undefined);
  const s = resolveRef(op.body, op.root);
  const valid = validFor(s, op.root);
  // Known real values for top-level fields (an existing address, say) make more requests get
  // past "not found" into the code behind it.
  const props = Object.keys(s.properties ?? {});
  const withKnown = props.length
    ? fc.tuple(valid, fc.constantFrom(...props), fc.nat()).map(([v, field, n]) => {
        const known = ing.known(op, field);
        if (!known.length || typeof v !== 'object' || v === null) return v;
        return { ...(v as object), [field]: known[n % known.length] };
      })
    : valid;
  return fc.oneof(valid, withKnown);
}

/** The path of every field of a JSON object, at every depth (`smtp`, then `smtp.host`, ...). */
function fieldPaths(v: unknown, prefix: string[] = []): string[][] {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return [];
  return Object.entries(v).flatMap(([k, x]) => [[...prefix, k], ...fieldPaths(x, [...prefix, k])]);
}

function setPath(v: unknown, path: string[], value: unknown, remove = false): unknown {
  if (!path.length) return value;
  const copy = { ...(v as Record<string, unknown>) };
  const [head, ...rest] = path as [string, ...string[]];
  if (rest.length) copy[head] = setPath(copy[head], rest, value, remove);
  else if (remove) delete copy[head];
  else copy[head] = value;
  return copy;
}

/** One request for `op`: its parameters, auth, content type and body, valid or with something hostile. */
export function requestArb(op: Operation, ing: Ingredients): fc.Arbitrary<FuzzRequest> {
  const weights: [string, number][] = [
    ['valid', 3],
    ['hostile-param', op.parameters.length ? 3 : 0],
    ['hostile-field', op.body ? 4 : 0],
    ['missing-field', op.body ? 1 : 0],
    ['extra-field', op.body ? 1 : 0],
    ['random-body', 1],
    ['malformed-body', op.body ? 1 : 0],
    ['extra-query', 1],
  ];
  const variant = fc.oneof(
    ...weights.filter(([, w]) => w > 0).map(([v, weight]) => ({ weight, arbitrary: fc.constant(v) })),
  );
  const params = fc.tuple(
    ...op.parameters.map((p) =>
      fc.record({
        valid: p.required
          ? paramArb(op, p, ing, false)
          : fc.option(paramArb(op, p, ing, false), { nil: undefined }),
        hostile: paramArb(op, p, ing, true),
      }),
    ),
  );
  return fc
    .record({
      variant,
      params,
      pick: fc.nat(),
      auth: ing.auths,
      contentType: contentTypes,
      body: bodyArb(op, ing),
      hostile: hostileValue,
      extraKey: fc.oneof(
        fc.stringMatching(/^[a-z]{1,10}$/),
        fc.constantFrom('__proto__', 'constructor', 'prototype', 'id', 'siteAdmin', 'verified'),
      ),
      raw: malformedJson,
      huge: fc.nat({ max: 99 }),
    })
    .map((d) => {
      const values = d.params.map((p) => p.valid);
      if (d.variant === 'hostile-param' && op.parameters.length) {
        const i = d.pick % op.parameters.length;
        values[i] = d.params[i]?.hostile;
      }
      let path = op.path;
      const query: string[] = [];
      const headers: Record<string, string> = {};
      op.parameters.forEach((p, i) => {
        const v = values[i];
        if (p.in === 'path') {
          const segment = rawSegments.includes(v ?? '') ? (v as string) : pctEncode(v ?? '');
          path = path.replace(`{${p.name}}`, segment);
        } else if (v !== undefined && p.in === 'query') {
          query.push(`${encodeURIComponent(p.name)}=${pctEncode(v)}`);
        } else if (v !== undefined && p.in === 'header' && headerSafe(v)) {
          headers[p.name] = v;
        }
      });
      if (d.variant === 'extra-query') {
        query.push(`${d.extraKey}=${pctEncode(asParamString(d.hostile))}`);
        if (query.length > 1) query.push(query[0] as string);
      }
      if (query.length) path += `?${query.join('&')}`;

      let body: string | Buffer | undefined;
      let value = d.body;
      switch (d.variant) {
        case 'hostile-field': {
          const leaves = fieldPaths(value);
          if (leaves.length) value = setPath(value, leaves[d.pick % leaves.length] as string[], d.hostile);
          break;
        }
        case 'missing-field': {
          const leaves = fieldPaths(value);
          if (leaves.length)
            value = setPath(value, leaves[d.pick % leaves.length] as string[], undefined, true);
          break;
        }
        case 'extra-field':
          value =
            typeof value === 'object' && value !== null
              ? Object.defineProperty({ ...value }, d.extraKey, { value: d.hostile, enumerable: true })
              : value;
          break;
        case 'random-body':
          value = d.hostile;
          break;
      }
      if (d.variant === 'random-body' && d.huge === 0) {
        // Deeper than JSON.stringify can go: written out.
        body = `${'{"a":['.repeat(5_000)}1${']}'.repeat(5_000)}`;
      } else if (d.variant === 'malformed-body') {
        body = d.raw;
        try {
          body = JSON.stringify(ing.sanitize(op, JSON.parse(d.raw)));
        } catch {
          // not JSON: sent as it is
        }
      } else if (value !== undefined) {
        body = JSON.stringify(ing.sanitize(op, value));
        // Past the default 1 MiB body limit, now and then.
        if (d.huge === 1 && d.variant !== 'valid') body = JSON.stringify({ blob: 'x'.repeat(1_100_000) });
      }
      if (body !== undefined) headers['content-type'] = d.contentType;
      if (d.auth.header !== undefined) headers.authorization = d.auth.header;
      headers.accept = 'application/json';
      return { op, method: op.method, path, headers, body, auth: d.auth.label, variant: d.variant };
    });
}

/** A valid value with every optional field present too, so the edge pass reaches each of them. */
function fullValid(schema: Schema, root: unknown, seed: number): unknown {
  const s = resolveRef(schema, root);
  if (!s.properties) return fc.sample(validFor(s, root), { seed, numRuns: 1 })[0];
  return Object.fromEntries(Object.entries(s.properties).map(([k, v]) => [k, fullValid(v, root, seed)]));
}

/** Values every field and parameter gets in turn in the edge pass (as the site admin). */
export const edgeValues: unknown[] = [
  '9223372036854775807',
  '9223372036854775808',
  '-1',
  '',
  '\u0000',
  'a\r\nBcc: x@fuzz.example',
  '\ud800',
  'a'.repeat(10_000),
  '用户@例子.广告',
  2 ** 64,
  1.5,
  null,
  true,
  {},
  [],
];

/**
 * One request per (parameter or body field) × edge value, the rest valid: a bounded, exhaustive
 * sweep of the boundaries, so a bug at one of them is found on every seed.
 */
export function edgeRequests(
  op: Operation,
  ing: Ingredients,
  auth: { label: string; header: string },
  seed: number,
) {
  const validParams = op.parameters.map((p) => {
    const known = ing.known(op, p.name);
    return known.length
      ? asParamString(known[0])
      : asParamString(fc.sample(validFor(p.schema, op.root), { seed, numRuns: 1 })[0]);
  });
  let validBody = op.body ? fullValid(op.body, op.root, seed) : undefined;
  if (validBody && typeof validBody === 'object') {
    const fields: Record<string, unknown> = { ...validBody };
    for (const field of Object.keys(fields)) {
      const [known] = ing.known(op, field);
      if (known !== undefined) fields[field] = known;
    }
    validBody = fields;
  }
  const out: FuzzRequest[] = [];
  const build = (params: string[], body: unknown): FuzzRequest => {
    let path = op.path;
    const query: string[] = [];
    const headers: Record<string, string> = { accept: 'application/json', authorization: auth.header };
    op.parameters.forEach((p, i) => {
      const v = params[i] as string;
      if (p.in === 'path') path = path.replace(`{${p.name}}`, pctEncode(v));
      else if (p.in === 'query') query.push(`${encodeURIComponent(p.name)}=${pctEncode(v)}`);
      else if (headerSafe(v)) headers[p.name] = v;
    });
    if (query.length) path += `?${query.join('&')}`;
    const sent = body === undefined ? undefined : JSON.stringify(ing.sanitize(op, body));
    if (sent !== undefined) headers['content-type'] = 'application/json';
    return { op, method: op.method, path, headers, body: sent, auth: auth.label, variant: 'edge' };
  };
  op.parameters.forEach((_, i) => {
    for (const v of edgeValues) {
      const params = [...validParams];
      params[i] = asParamString(v);
      out.push(build(params, validBody));
    }
  });
  for (const leaf of fieldPaths(validBody)) {
    for (const v of edgeValues) out.push(build(validParams, setPath(validBody, leaf, v)));
  }
  return out;
}
