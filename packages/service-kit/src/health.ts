import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import Type from 'typebox';

/** A readiness check: resolves `true`/`undefined` when ready, or a reason (or throws) when not. */
// biome-ignore lint/suspicious/noConfusingVoidType: a check written `async () => { await db.query(...) }` returns void.
export type ReadinessCheck = () => Promise<true | undefined | string | void>;

export interface HealthOptions {
  /** Named checks `/readyz` runs, e.g. `{ database: async () => { await db.query('select 1'); } }`. */
  checks?: Record<string, ReadinessCheck>;
  /** Each check's time box (default 2 s): a hung dependency makes the service not ready, not hung. */
  timeoutMs?: number;
}

export type CheckResult = { ok: true } | { ok: false; reason: string };

const CheckResultSchema = Type.Union([
  Type.Object({ ok: Type.Literal(true) }, { additionalProperties: false }),
  Type.Object({ ok: Type.Literal(false), reason: Type.String() }, { additionalProperties: false }),
]);
const Checks = Type.Record(Type.String(), CheckResultSchema);

const json = (schema: unknown, description: string) => ({
  description,
  content: { 'application/json': { schema } },
});

/** Runs one check within its time box; a failure's reason is its message (checks must keep secrets out). */
export async function runCheck(check: ReadinessCheck, timeoutMs: number): Promise<CheckResult> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<string>((resolve) => {
    timer = setTimeout(() => resolve(`no answer within ${timeoutMs} ms`), timeoutMs);
  });
  try {
    const outcome = await Promise.race([check(), timeout]);
    return typeof outcome === 'string' ? { ok: false, reason: outcome } : { ok: true };
  } catch (err) {
    return { ok: false, reason: err instanceof Error ? err.message : String(err) };
  } finally {
    clearTimeout(timer);
  }
}

/** Runs every check at once; `ready` is true when all passed. */
export async function runChecks(
  checks: Record<string, ReadinessCheck>,
  timeoutMs = 2000,
): Promise<{ ready: boolean; checks: Record<string, CheckResult> }> {
  const names = Object.keys(checks);
  const results = await Promise.all(names.map((name) => runCheck(checks[name]!, timeoutMs)));
  return {
    ready: results.every((r) => r.ok),
    checks: Object.fromEntries(names.map((name, i) => [name, results[i]!])),
  };
}

/**
 * `GET /healthz`: the process answers (liveness: restart me if not). `GET /readyz`: its
 * dependencies answer too (readiness: send me traffic), 503 naming each failing check.
 */
export const healthPlugin = fp(
  async (app: FastifyInstance, opts: HealthOptions) => {
    const checks = opts.checks ?? {};
    app.get(
      '/healthz',
      {
        logLevel: 'warn',
        schema: {
          tags: ['operations'],
          summary: 'Liveness: the process answers',
          response: { 200: json(Type.Object({ status: Type.Literal('ok') }), 'Alive') },
        },
      },
      async () => ({ status: 'ok' as const }),
    );
    app.get(
      '/readyz',
      {
        logLevel: 'warn',
        schema: {
          tags: ['operations'],
          summary: 'Readiness: the process and what it depends on answer',
          response: {
            200: json(Type.Object({ status: Type.Literal('ready'), checks: Checks }), 'Ready'),
            503: json(
              Type.Object({ status: Type.Literal('not-ready'), checks: Checks }),
              'Not ready; each failing check says why',
            ),
          },
        },
      },
      async (request, reply) => {
        const result = await runChecks(checks, opts.timeoutMs);
        if (result.ready) return { status: 'ready' as const, checks: result.checks };
        request.log.warn({ checks: result.checks }, 'not ready');
        return reply.code(503).send({ status: 'not-ready' as const, checks: result.checks });
      },
    );
  },
  { name: 'service-kit-health', fastify: '5.x' },
);
