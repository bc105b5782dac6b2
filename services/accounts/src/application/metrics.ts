import { AccountsError, RefusalError } from './errors.ts';

/**
 * How one command ended, as `accounts_commands_total{outcome}` says it: a bounded set, the
 * domain's refusal codes and the application's problem codes, never a field of the command.
 */
export function commandOutcome(err: unknown): string {
  if (err === undefined) return 'accepted';
  if (err instanceof RefusalError) return `refused:${err.refusal.refusal}`;
  if (err instanceof AccountsError) {
    // A lost race or a stale If-Match: the caller may retry on the new state.
    if (err.code === 'stale-version' || err.code === 'conflict') return 'conflict';
    // Uniqueness across users (username-taken, email-taken, …), found by the append's projection.
    if (err.status < 500) return `refused:${err.code}`;
  }
  return 'error';
}

/** Told how each command run ended; `command` is its type (`CreateUser`), or `unknown` when it failed before it was built. */
export type CommandObserver = (command: string, err: unknown) => void;

/**
 * Wraps a command runner so each run is counted by its command's type and outcome. The type is
 * read from the command the runner builds (it builds it on each attempt), so nothing else changes.
 */
export function observeCommands<C extends { type: string }, O, R>(
  run: (streamId: string, command: () => Promise<C> | C, options?: O) => Promise<R>,
  observe: CommandObserver | undefined,
): (streamId: string, command: () => Promise<C> | C, options?: O) => Promise<R> {
  if (!observe) return run;
  return async (streamId, command, options) => {
    let type = 'unknown';
    const typed = async () => {
      const built = await command();
      type = built.type;
      return built;
    };
    try {
      const result = await run(streamId, typed, options);
      observe(type, undefined);
      return result;
    } catch (err) {
      observe(type, err);
      throw err;
    }
  };
}
