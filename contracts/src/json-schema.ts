import { type EventType, eventSchemas } from './wire.ts';

/** A JSON Schema as plain JSON (no TypeBox metadata), ready to write to a file or embed. */
export type JsonSchema = { [key: string]: JsonValue };
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

export const JSON_SCHEMA_DIALECT = 'https://json-schema.org/draft/2020-12/schema';

/** The `$id` of an event's schema file; stable across releases (the version lives in the folder). */
export const eventSchemaId = (type: string) => `urn:sitemail:contracts:event:${type}`;

/** Plain JSON of a TypeBox schema: TypeBox's own markers are non-enumerable, so JSON drops them. */
export const toPlainJson = (schema: unknown): JsonSchema => JSON.parse(JSON.stringify(schema)) as JsonSchema;

/**
 * The JSON Schema (draft 2020-12) of one event, for consumers outside TypeScript and for the
 * schema-evolution guard. The TypeBox schemas use only keywords whose meaning is the same in
 * draft-07 and 2020-12, so the same body is also valid as an AsyncAPI payload.
 */
export function eventJsonSchema(type: EventType): JsonSchema {
  const { $id: _typeBoxId, ...body } = toPlainJson(eventSchemas[type]);
  return { $schema: JSON_SCHEMA_DIALECT, $id: eventSchemaId(type), ...body };
}

/** Every event's JSON Schema, by type, in the order of `eventSchemas`. */
export function eventJsonSchemas(): Record<EventType, JsonSchema> {
  return Object.fromEntries(
    (Object.keys(eventSchemas) as EventType[]).map((t) => [t, eventJsonSchema(t)]),
  ) as Record<EventType, JsonSchema>;
}
