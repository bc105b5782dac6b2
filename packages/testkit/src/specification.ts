import assert from 'node:assert/strict';

/**
 * A decider: what a command produces from the state its past events fold into. `decide` answers
 * the events to append, or a refusal (any non-array value), so a refusal is a value, not a throw.
 */
export interface Decider<Command, Event, State, Refusal> {
  decide(command: Command, state: State): Event[] | Refusal;
  evolve(state: State, event: Event): State;
  initialState(): State;
}

/** A projection: state folded from events, nothing decided. */
export interface Projection<Event, State> {
  evolve(state: State, event: Event): State;
  initialState(): State;
}

const fold = <Event, State>(p: Projection<Event, State>, events: readonly Event[], from?: State): State =>
  events.reduce((state, event) => p.evolve(state, event), from ?? p.initialState());

/**
 * Given events / When command / Then events (or a refusal, or nothing): tests that read as the
 * business rule they check, after emmett's DeciderSpecification. No method is named `then`, so
 * a specification is never mistaken for a promise.
 */
export const DeciderSpecification = {
  for<Command, Event, State, Refusal>(decider: Decider<Command, Event, State, Refusal>) {
    return {
      given(events: readonly Event[]) {
        const state = fold(decider, events);
        return {
          when(command: Command) {
            const decision = decider.decide(command, state);
            const events = (): Event[] => {
              assert.ok(
                Array.isArray(decision),
                `expected events, got a refusal: ${JSON.stringify(decision)}`,
              );
              return decision;
            };
            return {
              /** The decision is exactly these events. */
              thenEmits(expected: readonly Event[]) {
                assert.deepEqual(events(), expected);
              },
              /** The decision is events; `check` asserts on them (for events with generated parts). */
              thenEmitsMatching(check: (events: Event[]) => void) {
                check(events());
              },
              /** The decision is no event at all (an idempotent repeat). */
              thenNothingHappened() {
                assert.deepEqual(events(), []);
              },
              /** The decision is a refusal; `check` asserts which. */
              thenRefused(check: (refusal: Refusal) => void) {
                assert.ok(
                  !Array.isArray(decision),
                  `expected a refusal, got events ${JSON.stringify(decision)}`,
                );
                check(decision as Refusal);
              },
            };
          },
        };
      },
    };
  },
};

/** Given events / Then state, for projections (and for a decider's evolve alone). */
export const ProjectionSpecification = {
  for<Event, State>(projection: Projection<Event, State>) {
    return {
      given(events: readonly Event[], from?: State) {
        const state = fold(projection, events, from);
        return {
          /** The folded state is exactly this. */
          thenState(expected: State) {
            assert.deepEqual(state, expected);
          },
          /** `check` asserts on the folded state. */
          thenStateMatches(check: (state: State) => void) {
            check(state);
          },
        };
      },
    };
  },
};
