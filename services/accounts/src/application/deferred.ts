/**
 * Work a use case does after its answer has gone out, so that how long the answer takes tells
 * nothing about what the work found (a password reset for a known address appends and seals; for
 * an unknown one there is nothing to do). Tracked, so that closing the app waits for it and tests
 * can wait until it is done.
 */
export interface Deferred {
  /**
   * Starts `task` once the current I/O turn is over (the reply written). Resolves when it is done;
   * a failure goes to `onError` when given (the HTTP layer logs it), else rejects the result.
   */
  run(task: () => Promise<unknown>, onError?: (err: unknown) => void): Promise<void>;
  /** Resolves when every task started so far has finished. */
  idle(): Promise<void>;
}

export function createDeferred(): Deferred {
  const pending = new Set<Promise<unknown>>();
  return {
    run(task, onError) {
      const work = new Promise<void>((resolve) => setImmediate(resolve)).then(async () => {
        await task();
      });
      const result = onError ? work.catch(onError) : work;
      const tracked: Promise<unknown> = result.catch(() => {}).finally(() => pending.delete(tracked));
      pending.add(tracked);
      return result;
    },
    async idle() {
      while (pending.size > 0) await Promise.all([...pending]);
    },
  };
}
