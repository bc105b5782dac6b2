import { TypeBoxValidatorCompiler } from '@fastify/type-provider-typebox';
import type { FastifySchemaCompiler } from 'fastify';
import type { TSchema } from 'typebox';

const integerText = /^-?[0-9]+$/;

/** The names of a query or params object schema's integer members. */
function integerMembers(schema: TSchema): string[] {
  const properties = (schema as { properties?: Record<string, { type?: unknown }> }).properties ?? {};
  return Object.entries(properties)
    .filter(([, member]) => member.type === 'integer')
    .map(([name]) => name);
}

/**
 * TypeBox's compiler for both services, but an integer in a query string or path must be
 * written as one: TypeBox's conversion alone reads `1.5` as 1 and `0x10` as 16, so a caller's
 * mistake would pass silently instead of being a 400 naming the parameter.
 *
 * Each schema is compiled on its route's first request, not when the app starts: Fastify asks
 * for every route's validators at start, most routes of an instance are never called, and the
 * compiled code is start time and resident memory (measured targets of the production build).
 */
export const validatorCompiler: FastifySchemaCompiler<TSchema> = (route) => {
  let compiled: ReturnType<typeof TypeBoxValidatorCompiler> | undefined;
  const check = (value: unknown) => {
    compiled ??= TypeBoxValidatorCompiler(route);
    return compiled(value);
  };
  if (route.httpPart === 'body') return check;
  const integers = integerMembers(route.schema);
  if (integers.length === 0) return check;
  return (value) => {
    const raw = (value ?? {}) as Record<string, unknown>;
    const bad = integers.find(
      (name) => typeof raw[name] === 'string' && !integerText.test(raw[name] as string),
    );
    if (bad === undefined) return check(value);
    return {
      error: [
        {
          keyword: 'type',
          instancePath: `/${bad}`,
          schemaPath: '',
          params: { type: 'integer' },
          message: 'must be an integer',
        },
      ],
    };
  };
};
