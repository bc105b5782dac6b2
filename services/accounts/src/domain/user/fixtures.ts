import assert from 'node:assert/strict';
import type { AccountsEventData, SealedToken } from '@sitemail/contracts';
import type { UserCommand } from './commands.ts';
import { decide } from './decide.ts';
import { foldUser } from './evolve.ts';
import type { Refusal, RefusalCode } from './refusals.ts';
import type { LinkEventType, SitePolicy, UserEvent } from './types.ts';

/** Fixtures for the decider tests (Given events / When command / Then events or refusal). */
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

/** Given history: event bodies on alice's stream, each a second after the previous, from `now`. */
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

export function given(events: AccountsEventData[] | UserEvent[]) {
  const past =
    events.length > 0 && 'time' in (events[0] as object)
      ? (events as UserEvent[])
      : history(events as AccountsEventData[]);
  const state = foldUser(past);
  return {
    when(command: UserCommand) {
      const decision = decide(command, state);
      return {
        thenEmits(expected: AccountsEventData[]) {
          assert.ok(Array.isArray(decision), `expected events, got refusal ${JSON.stringify(decision)}`);
          assert.deepEqual(decision, expected);
        },
        thenRefused(code: RefusalCode, field?: string) {
          assert.ok(
            !Array.isArray(decision),
            `expected refusal ${code}, got events ${JSON.stringify(decision)}`,
          );
          assert.equal((decision as Refusal).refusal, code);
          assert.equal((decision as Refusal).field, field);
          assert.ok((decision as Refusal).message.length > 0);
        },
      };
    },
  };
}
