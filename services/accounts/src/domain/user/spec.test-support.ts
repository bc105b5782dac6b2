/**
 * Test support for the user decider's specifications (imported by `*.unit.test.ts` only): the
 * people, times and site policies the tests speak of, and `given` over the testkit's
 * `DeciderSpecification` that also stamps each given event with its stream and time.
 */
import assert from 'node:assert/strict';
import type { AccountsEventData, SealedToken } from '@sitemail/contracts';
import { DeciderSpecification } from '@sitemail/testkit';
import type { UserCommand } from './commands.ts';
import { userDecider } from './decider.ts';
import type { Refusal, RefusalCode } from './refusals.ts';
import type { LinkEventType, SitePolicy, UserEvent, UserState } from './types.ts';

export const alice = '0b6f4c1e-8d1a-4b9e-9a57-3f2d1c0e5a11';
export const bob = '7c2e9d40-1f3b-4a6c-8e5d-2b9a0c4f6e22';
export const now = new Date('2026-11-25T10:00:00.000Z');
export const later = (ms: number) => new Date(now.getTime() + ms);

export const withSmtp: SitePolicy = { smtpConfigured: true, builtinAuth: true };
export const withoutSmtp: SitePolicy = { smtpConfigured: false, builtinAuth: true };
export const singleSignOn: SitePolicy = { smtpConfigured: true, builtinAuth: false };

/** A sealer whose output names the event type it was sealed for, so tests can see which link went out. */
export const sealed = (type: LinkEventType): SealedToken => ({
  alg: 'A256GCM',
  kid: 'test',
  iv: 'AAAAAAAAAAAAAAAA',
  ciphertext: `sealed-${type}`,
  tag: 'BBBBBBBBBBBBBBBBBBBBBB',
});

/** Given history: event bodies on alice's stream, each a second after the previous, from `start`. */
export function history(events: AccountsEventData[], start: Date = now, userId = alice): UserEvent[] {
  return events.map(
    (e, i) => ({ ...e, userId, time: new Date(start.getTime() + i * 1000).toISOString() }) as UserEvent,
  );
}

export const aliceSignedUp = (verified: boolean): AccountsEventData<'UserCreated'> => ({
  type: 'UserCreated',
  data: {
    username: 'alice',
    email: 'alice@example.com',
    emailVerified: verified,
    origin: 'builtin-signup',
    authProvider: { type: 'builtin' },
    siteAdmin: true,
  },
});

const isOnStream = (event: AccountsEventData): event is UserEvent => 'userId' in event && 'time' in event;

interface Folded {
  user: UserState;
  /** How many events were given so far: a body without a time is placed that many seconds after `now`. */
  seen: number;
}

const onAlicesStream = (event: AccountsEventData, seen: number): UserEvent =>
  isOnStream(event)
    ? event
    : ({ ...event, userId: alice, time: later(seen * 1000).toISOString() } as UserEvent);

/** The user decider as the specification folds it: given bodies land on alice's stream, as `history` places them. */
const decider = {
  decide: (command: UserCommand, state: Folded) => userDecider.decide(command, state.user),
  evolve: (state: Folded, event: AccountsEventData): Folded => ({
    user: userDecider.evolve(state.user, onAlicesStream(event, state.seen)),
    seen: state.seen + 1,
  }),
  initialState: (): Folded => ({ user: userDecider.initialState(), seen: 0 }),
};

const spec = DeciderSpecification.for(decider);

/** Given events / When command / Then events, nothing, or a refusal naming its code and field. */
export function given(events: AccountsEventData[] | UserEvent[]) {
  return {
    when(command: UserCommand) {
      const then = spec.given(events).when(command);
      return {
        thenEmits: (expected: AccountsEventData[]) => then.thenEmits(expected),
        thenNothingHappened: () => then.thenNothingHappened(),
        thenRefused(code: RefusalCode, field?: string) {
          then.thenRefused((refusal: Refusal) => {
            assert.equal(refusal.refusal, code);
            assert.equal(refusal.field, field);
            assert.ok(refusal.message.length > 0);
          });
        },
      };
    },
  };
}
