import { decide } from './decide.ts';
import { evolve } from './evolve.ts';
import { initialUserState, type UserState } from './types.ts';

/**
 * The user aggregate as one decider (after emmett's `{ decide, evolve, initialState }`): the
 * command runner folds a stream with `evolve` from `initialState()`, then `decide`s.
 */
export const userDecider = {
  decide,
  evolve,
  initialState: (): UserState => initialUserState,
};

export type UserDecider = typeof userDecider;
