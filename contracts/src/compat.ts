/**
 * Schema-evolution guard: judges the current event schemas against those of the last released
 * contract version, from the point of view of the consumers of that version. Pure.
 *
 * Two kinds of reader must keep working, so a change must hold in both directions:
 * - a consumer built against the released version reads messages produced now, and validates
 *   them (`decodeEvent` does): a field it relies on must still be there, with the same type, and
 *   a value must stay within what it accepts (a new enum value, a longer string, a wider type
 *   would be dead-lettered);
 * - the current code reads messages produced under the released version (topic replay, events
 *   stored in the outbox): a newly required field or a stricter rule (pattern/format added,
 *   tighter bounds, fewer allowed values) would reject them.
 * What stays compatible: new events, new optional fields (readers tolerate unknown fields),
 * documentation (description, title, examples).
 */
import type { JsonSchema, JsonValue } from './json-schema.ts';

export type BreakKind =
  | 'event-removed'
  | 'required-field-removed'
  | 'required-field-made-optional'
  | 'field-newly-required'
  | 'type-changed'
  | 'const-changed'
  | 'values-removed'
  | 'values-added'
  | 'constraint-stricter'
  | 'constraint-looser'
  | 'changed';

export interface Break {
  event: string;
  /** Where in the event, as a JSON pointer (`/data/email`); empty for the whole event. */
  path: string;
  kind: BreakKind;
  message: string;
}

/** Keywords that document rather than constrain; changing them breaks nobody. */
const documentation = new Set([
  '$schema',
  '$id',
  '$comment',
  'title',
  'description',
  'examples',
  'default',
  'deprecated',
]);
/** Keywords judged specifically below; any other constraint keyword must stay exactly the same. */
const handled = new Set([
  'type',
  'const',
  'enum',
  'anyOf',
  'properties',
  'required',
  'additionalProperties',
  'items',
  'pattern',
  'format',
  'minLength',
  'maxLength',
  'minimum',
  'maximum',
  'exclusiveMinimum',
  'exclusiveMaximum',
  'minItems',
  'maxItems',
]);

/** Lower bounds: a higher value is stricter. Upper bounds: a lower value is stricter. */
const lowerBounds = ['minLength', 'minimum', 'exclusiveMinimum', 'minItems'] as const;
const upperBounds = ['maxLength', 'maximum', 'exclusiveMaximum', 'maxItems'] as const;

type Schema = { [key: string]: JsonValue | undefined };

/** Compares the released schemas (by event type) with the current ones; returns every break found. */
export function findBreakingChanges(
  released: Record<string, JsonSchema>,
  current: Record<string, JsonSchema>,
): Break[] {
  const breaks: Break[] = [];
  for (const [event, before] of Object.entries(released)) {
    const after = current[event];
    if (!after) {
      breaks.push({ event, path: '', kind: 'event-removed', message: `event ${event} was removed` });
      continue;
    }
    compareNode(before, after, '', (path, kind, message) => breaks.push({ event, path, kind, message }));
  }
  return breaks;
}

/** One line per break, for a test failure message. */
export function describeBreaks(breaks: Break[]): string {
  return breaks.map((b) => `${b.event}${b.path || ''}: ${b.kind}: ${b.message}`).join('\n');
}

type Report = (path: string, kind: BreakKind, message: string) => void;

function compareNode(before: Schema, after: Schema, path: string, report: Report) {
  const beforeValues = literalValues(before);
  const afterValues = literalValues(after);
  if (beforeValues || afterValues) {
    compareValueSets(beforeValues, afterValues, path, report);
  } else if (before.anyOf || after.anyOf) {
    if (!sameJson(stripDocs(before.anyOf), stripDocs(after.anyOf))) {
      report(path, 'changed', 'the alternatives (anyOf) changed');
    }
  }

  if (!sameJson(typeSet(before.type), typeSet(after.type))) {
    report(path, 'type-changed', `type changed from ${show(before.type)} to ${show(after.type)}`);
    return; // everything below would only repeat the same break
  }

  for (const keyword of ['pattern', 'format'] as const) {
    const [b, a] = [before[keyword], after[keyword]];
    if (b === a) continue;
    if (b === undefined) report(path, 'constraint-stricter', `${keyword} ${show(a)} was added`);
    else if (a === undefined) report(path, 'constraint-looser', `${keyword} ${show(b)} was removed`);
    else report(path, 'constraint-stricter', `${keyword} changed from ${show(b)} to ${show(a)}`);
  }
  for (const keyword of lowerBounds) compareBound(keyword, before[keyword], after[keyword], 1, path, report);
  for (const keyword of upperBounds) compareBound(keyword, before[keyword], after[keyword], -1, path, report);

  if (before.additionalProperties !== false && after.additionalProperties === false) {
    report(path, 'constraint-stricter', 'unknown fields are no longer allowed (additionalProperties: false)');
  } else if (before.additionalProperties === false && after.additionalProperties !== false) {
    report(path, 'constraint-looser', 'unknown fields are now allowed');
  }

  compareObject(before, after, path, report);

  if (isSchema(before.items) && isSchema(after.items))
    compareNode(before.items, after.items, `${path}/items`, report);
  else if (!sameJson(before.items, after.items))
    report(`${path}/items`, 'changed', 'the item schema changed');

  const others = new Set([...Object.keys(before), ...Object.keys(after)]);
  for (const keyword of others) {
    if (documentation.has(keyword) || handled.has(keyword)) continue;
    if (!sameJson(before[keyword], after[keyword])) {
      report(path, 'changed', `${keyword} changed from ${show(before[keyword])} to ${show(after[keyword])}`);
    }
  }
}

function compareObject(before: Schema, after: Schema, path: string, report: Report) {
  const beforeProps = (isSchema(before.properties) ? before.properties : {}) as Record<string, Schema>;
  const afterProps = (isSchema(after.properties) ? after.properties : {}) as Record<string, Schema>;
  const beforeRequired = new Set(stringList(before.required));
  const afterRequired = new Set(stringList(after.required));

  for (const [name, schema] of Object.entries(beforeProps)) {
    const at = `${path}/${name}`;
    const next = afterProps[name];
    if (!next) {
      // An optional field may go: its readers already handle its absence.
      if (beforeRequired.has(name))
        report(at, 'required-field-removed', `required field ${name} was removed or renamed`);
      continue;
    }
    if (beforeRequired.has(name) && !afterRequired.has(name)) {
      report(
        at,
        'required-field-made-optional',
        `field ${name} is no longer required; readers of the released version rely on it`,
      );
    }
    compareNode(schema, next, at, report);
  }
  for (const name of afterRequired) {
    if (!beforeRequired.has(name)) {
      report(
        `${path}/${name}`,
        'field-newly-required',
        `field ${name} is now required; messages of the released version lack it`,
      );
    }
  }
}

function compareBound(
  keyword: string,
  b: JsonValue | undefined,
  a: JsonValue | undefined,
  stricterWhen: 1 | -1,
  path: string,
  report: Report,
) {
  if (b === a) return;
  if (typeof b !== 'number' && typeof a === 'number') {
    report(path, 'constraint-stricter', `${keyword} ${a} was added`);
  } else if (typeof b === 'number' && typeof a !== 'number') {
    report(path, 'constraint-looser', `${keyword} ${b} was removed`);
  } else if (typeof b === 'number' && typeof a === 'number') {
    const stricter = (a - b) * stricterWhen > 0;
    report(
      path,
      stricter ? 'constraint-stricter' : 'constraint-looser',
      `${keyword} changed from ${b} to ${a}`,
    );
  }
}

/**
 * The closed set of values a schema allows, when it is one: `const`, `enum`, or (as TypeBox writes a
 * union of literals) `anyOf` of `const`s. Undefined when the schema is open.
 */
function literalValues(schema: Schema): JsonValue[] | undefined {
  if (schema.const !== undefined) return [schema.const];
  if (Array.isArray(schema.enum)) return schema.enum;
  if (Array.isArray(schema.anyOf) && schema.anyOf.length > 0) {
    const consts = schema.anyOf.map((s) => (isSchema(s) ? s.const : undefined));
    if (consts.every((c) => c !== undefined)) return consts as JsonValue[];
  }
  return undefined;
}

function compareValueSets(
  before: JsonValue[] | undefined,
  after: JsonValue[] | undefined,
  path: string,
  report: Report,
) {
  if (!before) {
    report(path, 'constraint-stricter', `now restricted to ${show(after)}`);
    return;
  }
  if (!after) {
    report(path, 'constraint-looser', `no longer restricted to ${show(before)}`);
    return;
  }
  const key = (v: JsonValue) => JSON.stringify(v);
  const afterKeys = new Set(after.map(key));
  const beforeKeys = new Set(before.map(key));
  const removed = before.filter((v) => !afterKeys.has(key(v)));
  const added = after.filter((v) => !beforeKeys.has(key(v)));
  if (before.length === 1 && after.length === 1 && removed.length === 1) {
    report(path, 'const-changed', `value changed from ${show(before[0])} to ${show(after[0])}`);
    return;
  }
  if (removed.length > 0) report(path, 'values-removed', `no longer allows ${removed.map(show).join(', ')}`);
  if (added.length > 0) {
    report(
      path,
      'values-added',
      `now allows ${added.map(show).join(', ')}, which readers of the released version reject`,
    );
  }
}

const isSchema = (v: JsonValue | undefined): v is { [key: string]: JsonValue } =>
  typeof v === 'object' && v !== null && !Array.isArray(v);
const stringList = (v: JsonValue | undefined): string[] =>
  Array.isArray(v) ? v.filter((s): s is string => typeof s === 'string') : [];
const typeSet = (v: JsonValue | undefined) => (Array.isArray(v) ? [...v].sort() : v === undefined ? [] : [v]);
const show = (v: JsonValue | undefined) => (v === undefined ? 'none' : JSON.stringify(v));
const sameJson = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

function stripDocs(v: JsonValue | undefined): JsonValue | undefined {
  if (Array.isArray(v)) return v.map((x) => stripDocs(x) ?? null);
  if (!isSchema(v)) return v;
  const out: { [key: string]: JsonValue } = {};
  for (const [k, x] of Object.entries(v)) if (!documentation.has(k)) out[k] = stripDocs(x) ?? null;
  return out;
}
