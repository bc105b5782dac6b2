import type { ConsumerState } from './types.ts';

/**
 * A consumer's state in words for `/readyz` and the logs, e.g. "joining group accounts (12 s)".
 * One wording for every service that consumes, so an operator reads the same sentence whichever
 * instance they look at. Never includes a payload: `reason` is the bus's own summary.
 */
export function describeConsumerState(state: ConsumerState, now = Date.now()): string {
  const secs = Math.max(0, Math.round((now - state.since) / 1000));
  switch (state.phase) {
    case 'assigned':
      return `assigned ${state.partitions ?? 0} partition(s) of group ${state.groupId}`;
    case 'joining':
      return `joining group ${state.groupId} (${secs} s)`;
    case 'retrying':
      return `group ${state.groupId} join failed ${state.attempt ?? 1} time(s), retrying (${state.reason ?? 'unknown error'})`;
    case 'stalled':
      return `group ${state.groupId} not progressing (${state.reason ?? 'no batch while behind'}), restarting the consumer`;
    case 'stopped':
      return `the consumer of group ${state.groupId} is stopped`;
    default: {
      const unknown: never = state.phase;
      return `group ${state.groupId}: ${String(unknown)}`;
    }
  }
}
