import { type Span, SpanStatusCode, trace } from '@opentelemetry/api';
import type { Database, Queryable } from '@sitemail/db';
import {
  type EventStore,
  type NewEvent,
  type StoredEvent,
  StreamVersionConflictError,
} from '@sitemail/event-store';

/** `decide` answers the events to append or a refusal (any non-array value): a refusal is a value. */
export interface Decider<Command, Event, State, Refusal> {
  decide(command: Command, state: State): NewEvent[] | Refusal;
  evolve(state: State, event: Event): State;
  initialState(): State;
}

export interface CommandRunnerDeps<Command extends { now: Date }, Event, State, Refusal> {
  db: Database;
  eventStore: EventStore;
  decider: Decider<Command, Event, State, Refusal>;
  /** The decider's view of a stored event of the stream. */
  fromStored(stored: StoredEvent): Event;
  /** Writes the read models, in the append's transaction. */
  project(tx: Queryable, events: StoredEvent[]): Promise<void>;
  /** What to throw for a refusal, and for a stream that is not at the version the caller pinned. */
  errors: {
    refused(refusal: Refusal): Error;
    staleVersion(actual: number, expected: number): Error;
    changedConcurrently(): Error;
  };
  /** Failures of an append, other than a version conflict, that mean "decide again on the new state". */
  retryable?(err: unknown): boolean;
  /** Attempts before a lost race is the caller's error. */
  maxAttempts?: number;
}

/** Options of one command run. */
export interface RunOptions {
  /** The version the caller last saw (`If-Match`): a different current version is a conflict, not a retry. */
  expectedVersion?: number | undefined;
  /** More writes in the append's transaction (password hashes, used links), after the projection. */
  alsoWrite?: (tx: Queryable, events: StoredEvent[]) => Promise<void>;
  /** When the command decides no events, still commit `alsoWrite` (using up a link, say). */
  writeWhenNoEvents?: boolean;
  /**
   * The stream is new (a freshly made id): the first attempt decides on the empty stream without
   * reading it. Should it exist after all, the append's version check refuses and the next
   * attempt reads it.
   */
  newStream?: boolean;
}

/** Runs a command on a stream: `command` is called on each attempt, so it can read what it needs afresh. */
export type RunCommand<Command> = (
  streamId: string,
  command: () => Promise<Command> | Command,
  options?: RunOptions,
) => Promise<StoredEvent[]>;

// Each lost race means another command on the stream committed, so N concurrent commands need at most N attempts.
const MAX_ATTEMPTS = 8;

/**
 * The one command handler (after emmett's `handleCommand`): read the stream, fold it with
 * `evolve` from `initialState`, `decide`, append with the version read as the expected one and
 * project in the same transaction. When another command won the race, decide again on the new
 * state, unless the caller pinned the version it saw.
 */
export function createCommandRunner<Command extends { now: Date }, Event, State, Refusal>(
  deps: CommandRunnerDeps<Command, Event, State, Refusal>,
): RunCommand<Command> {
  const { db, eventStore, decider, errors } = deps;
  const maxAttempts = deps.maxAttempts ?? MAX_ATTEMPTS;

  // A span per command, active while it runs, so the append stores its trace context in the outbox.
  const tracer = trace.getTracer('sitemail-accounts');
  return (streamId, command, options = {}) =>
    tracer.startActiveSpan('command', async (span) => {
      const outcome = { refused: false };
      try {
        const stored = await runOnce(streamId, command, options, span, outcome);
        span.setAttribute('sitemail.command.events', stored.length);
        return stored;
      } catch (err) {
        // A refusal is the domain's answer, not a failure of the service.
        if (!outcome.refused) {
          span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error)?.name ?? 'Error' });
        }
        throw err;
      } finally {
        span.end();
      }
    });

  async function runOnce(
    streamId: string,
    command: () => Promise<Command> | Command,
    options: RunOptions,
    span: Span,
    outcome: { refused: boolean },
  ): Promise<StoredEvent[]> {
    for (let attempt = 1; ; attempt++) {
      span.setAttribute('sitemail.command.attempts', attempt);
      const history = attempt === 1 && options.newStream ? [] : await eventStore.readStream(streamId);
      const version = history.at(-1)?.position ?? 0;
      if (options.expectedVersion !== undefined && options.expectedVersion !== version) {
        throw errors.staleVersion(version, options.expectedVersion);
      }
      const cmd = await command();
      // Type and stream (a user id) only: a command's fields hold addresses, passwords and tokens.
      const type = (cmd as { type?: unknown }).type;
      if (attempt === 1 && typeof type === 'string') {
        span.updateName(`command ${type}`);
        span.setAttributes({ 'sitemail.command.type': type, 'sitemail.stream_id': streamId });
      }
      const state = history.reduce(
        (s, stored) => decider.evolve(s, deps.fromStored(stored)),
        decider.initialState(),
      );
      const decision = decider.decide(cmd, state);
      if (!Array.isArray(decision)) {
        const code = (decision as { refusal?: unknown }).refusal;
        if (typeof code === 'string') span.setAttribute('sitemail.command.refusal', code);
        outcome.refused = true;
        throw errors.refused(decision);
      }
      if (decision.length === 0) {
        const also = options.alsoWrite;
        if (options.writeWhenNoEvents && also) await db.transaction((tx) => also(tx, []));
        return [];
      }
      try {
        return await eventStore.append(streamId, version, decision, {
          now: cmd.now,
          project: async (tx, events) => {
            await deps.project(tx, events);
            await options.alsoWrite?.(tx, events);
          },
        });
      } catch (err) {
        const conflict = err instanceof StreamVersionConflictError;
        const retryable =
          (conflict && options.expectedVersion === undefined) || deps.retryable?.(err) === true;
        if (retryable && attempt < maxAttempts) continue;
        if (conflict) throw errors.changedConcurrently();
        throw err;
      }
    }
  }
}
