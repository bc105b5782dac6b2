const INVALID = (field: string, problem: string) => ({ field, message: `invalid "${field}": ${problem}` });

/** The first validation problem, worded for an admin and naming the field. */
export function describeValidationError(
  errors: readonly { keyword: string; instancePath: string; params: Record<string, unknown> }[],
): { field?: string; message: string } {
  const field = (path: string) => path.split('/').filter(Boolean).join('.');
  const unknown = errors.find((e) => e.keyword === 'additionalProperties');
  if (unknown) {
    const names = (unknown.params.additionalProperties as string[] | undefined) ?? [];
    const prefix = field(unknown.instancePath);
    const f = [prefix, names[0] ?? ''].filter(Boolean).join('.');
    return { field: f, message: `unknown field "${f}"` };
  }
  const missing = errors.find((e) => e.keyword === 'required');
  if (missing) {
    const names = (missing.params.requiredProperties as string[] | undefined) ?? [];
    const f = [field(missing.instancePath), names[0] ?? ''].filter(Boolean).join('.');
    return { field: f, message: `missing field "${f}"` };
  }
  const first = errors.find((e) => e.keyword !== 'boolean' && e.keyword !== 'const') ?? errors[0];
  if (!first) return { message: 'invalid request body' };
  const f = field(first.instancePath);
  if (!f) return { message: 'the request body must be a JSON object' };
  if (first.keyword === 'anyOf') {
    const allowed = errors
      .filter((e) => e.keyword === 'const' && e.instancePath === first.instancePath)
      .map((e) => JSON.stringify(e.params.allowedValue));
    return INVALID(f, `must be one of ${allowed.join(', ')}`);
  }
  const p = first.params;
  switch (first.keyword) {
    case 'type':
      return INVALID(f, `must be ${p.type === 'integer' ? 'an integer' : `a ${String(p.type)}`}`);
    case 'minimum':
    case 'maximum':
      return INVALID(f, `must be ${String(p.comparison)} ${String(p.limit)}`);
    case 'minLength':
      return INVALID(f, `must have at least ${String(p.limit)} characters`);
    case 'maxLength':
      return INVALID(f, `must have at most ${String(p.limit)} characters`);
    case 'pattern':
      return INVALID(f, 'has characters that are not allowed here (spaces, line breaks or slashes)');
    default:
      return INVALID(f, 'is not valid');
  }
}
