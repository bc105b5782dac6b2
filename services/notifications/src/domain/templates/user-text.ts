/**
 * Text that users typed (organisation, API-key and code-monitor names, usernames, display names)
 * as it may appear in an email. Any user can pick such a name (255 characters of anything), and
 * it reaches the subject, a header, and the plain-text part, where a line break would start a
 * header or a paragraph of the attacker's choosing and a bidi override would make the product's
 * own words read backwards. So: control characters and bidi controls become a space, and the
 * length is bounded, so the product's wording around the name stays what the reader sees.
 */

// C0 controls, DEL, C1 controls; the bidi embeddings, overrides and isolates (U+202A–U+202E,
// U+2066–U+2069) and the marks (U+200E, U+200F, U+061C); line and paragraph separators
// (U+2028, U+2029), which some clients break lines on; and the BOM / zero-width no-break space
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
const unsafe = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ufeff]+/gu;

/** The text with every control, bidi or line-separating character replaced by a space; spaces collapsed, ends trimmed. */
export function plainText(s: string): string {
  return s.replace(unsafe, ' ').replace(/ {2,}/g, ' ').trim();
}

/** At most `max` characters (code points, so a surrogate pair is never cut), the cut marked with "…". */
export function bounded(s: string, max: number): string {
  const chars = Array.from(s);
  if (chars.length <= max) return s;
  return `${chars
    .slice(0, max - 1)
    .join('')
    .trimEnd()}…`;
}

/** User text in a subject: a name longer than this is cut, so the product's wording stays in view. */
export const SUBJECT_TEXT_MAX = 64;
/** User text in the body: names are at most 255 characters; a code-monitor query may be longer. */
export const BODY_TEXT_MAX = 512;

/** User text made safe for one line of an email: plain, then bounded. */
export const userText = (s: string, max: number) => bounded(plainText(s), max);
