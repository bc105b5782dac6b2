import { parseEmailAddress } from '@sitemail/contracts';
import type { FastifyRequest } from 'fastify';
import { invalidInput } from '../application/errors.ts';

/**
 * The address as accounts keeps and looks it up: the product grammar's canonical form
 * (`parseEmailAddress`: IDN domains as A-labels), lower-cased whole, since addresses compare
 * case-insensitively (as in Sourcegraph) and one address must have one spelling.
 */
export function accountsAddress(
  input: string,
): { ok: true; address: string } | { ok: false; problem: string } {
  const parsed = parseEmailAddress(input);
  return parsed.ok ? { ok: true, address: parsed.address.toLowerCase() } : parsed;
}

/**
 * Characters refused in text other people see (display names, usernames, organisation and key
 * names end up in email subjects and every consumer's copy of the events): C0 and C1 controls
 * and DEL (a CR/LF would start a new header or line), the line and paragraph separators, and the
 * bidirectional embeddings, overrides and isolates that make text read other than it is; and a
 * lone UTF-16 surrogate (not a character at all: no UTF-8 form, so the database refuses it).
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point.
const FORBIDDEN_TEXT = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]|\p{Cs}/u;
const ALLOWED_CHAR = '[^\\u0000-\\u001f\\u007f-\\u009f\\u2028\\u2029\\u202a-\\u202e\\u2066-\\u2069]';
/** The same rule as a JSON Schema pattern (the schemas' backstop), and one that also refuses a blank value. */
export const PLAIN_TEXT_PATTERN = `^${ALLOWED_CHAR}*$`;
export const NOT_BLANK_PLAIN_TEXT_PATTERN = `^(?=.*\\S)${ALLOWED_CHAR}*$`;

const hex = (c: string) => `U+${(c.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, '0')}`;

/** The members holding text shown to others (or carried in events), checked by name wherever they appear. */
const TEXT_FIELDS = ['displayName', 'username', 'organization', 'name', 'externalId'] as const;

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

function checkText(part: Record<string, unknown>): void {
  for (const field of TEXT_FIELDS) {
    const value = part[field];
    const bad = typeof value === 'string' ? FORBIDDEN_TEXT.exec(value) : null;
    if (bad) {
      throw invalidInput(
        `${field} contains ${hex(bad[0])}: control characters, line breaks, direction overrides and lone surrogates are not allowed`,
        field,
      );
    }
  }
}

/**
 * Before schema validation, so the answer names the problem in words (the schema's format and
 * pattern stay as a backstop and document the rule): a body's `email` must follow the product
 * grammar and is replaced by its canonical form; an `email` in the path or query (a lookup of an
 * address stored already, perhaps before this grammar) is canonicalised when it parses and left
 * to the route's schema otherwise; text fields refuse control and direction-override characters.
 */
export async function checkInput(request: FastifyRequest): Promise<void> {
  const body = request.body;
  if (isRecord(body)) {
    if (typeof body.email === 'string') {
      const parsed = accountsAddress(body.email);
      if (!parsed.ok) throw invalidInput(`email ${parsed.problem}`, 'email');
      body.email = parsed.address;
    }
    checkText(body);
  }
  if (isRecord(request.params)) checkText(request.params);
  for (const part of [request.params, request.query]) {
    if (isRecord(part) && typeof part.email === 'string') {
      const parsed = accountsAddress(part.email);
      if (parsed.ok) part.email = parsed.address;
    }
  }
}
