import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type Decider, DeciderSpecification, ProjectionSpecification } from './specification.ts';

// A counter that refuses to go below zero: the smallest decider with events, refusals and no-ops.
type Command = { type: 'add'; by: number } | { type: 'take'; by: number };
type Event = { type: 'added'; by: number } | { type: 'taken'; by: number };
const counter: Decider<Command, Event, number, { refusal: string }> = {
  initialState: () => 0,
  evolve: (n, e) => (e.type === 'added' ? n + e.by : n - e.by),
  decide: (c, n) => {
    if (c.by === 0) return [];
    if (c.type === 'take' && c.by > n) return { refusal: 'not-enough' };
    return [{ type: c.type === 'add' ? 'added' : 'taken', by: c.by }];
  },
};
const spec = DeciderSpecification.for(counter);

describe('DeciderSpecification', () => {
  it('passes when the decision is the expected events, and fails otherwise', () => {
    spec
      .given([{ type: 'added', by: 2 }])
      .when({ type: 'take', by: 1 })
      .thenEmits([{ type: 'taken', by: 1 }]);
    assert.throws(() =>
      spec
        .given([])
        .when({ type: 'add', by: 1 })
        .thenEmits([{ type: 'added', by: 2 }]),
    );
  });

  it('checks refusals, and fails when events came instead', () => {
    spec
      .given([{ type: 'added', by: 1 }])
      .when({ type: 'take', by: 2 })
      .thenRefused((r) => assert.equal(r.refusal, 'not-enough'));
    assert.throws(
      () =>
        spec
          .given([])
          .when({ type: 'add', by: 1 })
          .thenRefused(() => {}),
      /expected a refusal/,
    );
    assert.throws(() => spec.given([]).when({ type: 'take', by: 1 }).thenEmits([]), /expected events/);
  });

  it('thenNothingHappened holds only for an empty decision', () => {
    spec.given([]).when({ type: 'add', by: 0 }).thenNothingHappened();
    assert.throws(() => spec.given([]).when({ type: 'add', by: 1 }).thenNothingHappened());
  });
});

describe('ProjectionSpecification', () => {
  it('folds the given events from the initial state (or a given one)', () => {
    const p = ProjectionSpecification.for(counter);
    p.given([
      { type: 'added', by: 3 },
      { type: 'taken', by: 1 },
    ]).thenState(2);
    p.given([{ type: 'added', by: 3 }], 10).thenState(13);
    assert.throws(() => p.given([{ type: 'added', by: 3 }]).thenState(4));
  });
});
