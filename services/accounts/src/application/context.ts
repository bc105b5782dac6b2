import { type LinkTokenKey, sealToken } from '@sitemail/contracts';
import type { Database } from '@sitemail/db';
import type { EventStore, StoredEvent } from '@sitemail/event-store';
import { builtinAuthEnabled, type SiteConfigSource, smtpConfigured } from '@sitemail/site-config';
import {
  type Sealer,
  type SitePolicy,
  type UserCommand,
  type UserEvent,
  userDecider,
} from '../domain/user/index.ts';
import { isShredded, withPersonalData } from '../store/personal-data.ts';
import { createProjection } from '../store/projection.ts';
import { createQueries, type Queries, type UserView } from '../store/queries.ts';
import { violatedUniqueRule } from '../store/unique-violations.ts';
import { createCommandRunner, type RunCommand } from './command-runner.ts';
import { createDeferred, type Deferred } from './deferred.ts';
import { changedConcurrently, refused, staleVersion, userNotFound } from './errors.ts';
import { type CommandObserver, observeCommands } from './metrics.ts';
import { DEFAULT_SCRYPT_COST, hashPassword, type ScryptCost } from './passwords.ts';
import { newLinkToken } from './secrets.ts';

export interface AccountsDeps {
  db: Database;
  eventStore: EventStore;
  siteConfig: SiteConfigSource;
  linkTokenKey: LinkTokenKey;
  clock?: () => Date;
  passwordCost?: ScryptCost;
  /** Told how each command ended (`accounts_commands_total`, see metrics.ts). */
  onCommand?: CommandObserver;
}

/** What every use case of accounts works with: the runner over the user decider, the read models, the site. */
export interface AccountsContext {
  db: Database;
  queries: Queries;
  /** Runs a command on a user's stream (read, fold, decide, append and project, retry on a lost race). */
  run: RunCommand<UserCommand>;
  clock: () => Date;
  passwordCost: ScryptCost;
  /** The two facts of the current site config that `decide` needs. */
  site(): SitePolicy;
  /** Seals fresh link tokens for notifications, bound to the user. */
  sealerFor(userId: string): Sealer;
  /** The user's view, or the 404 saying there is no such user. */
  getUser(userId: string): Promise<UserView>;
  /** A hash to check a password against when there is none, so that timing does not tell. */
  decoyHash(): Promise<string>;
  /** Work done after the answer (see `deferred.ts`). */
  deferred: Deferred;
}

const toUserEvent = (e: StoredEvent): UserEvent =>
  ({
    type: e.type,
    data: e.data,
    userId: e.streamId,
    time: e.time,
    ...(isShredded(e) ? { shredded: true } : {}),
  }) as UserEvent;

export function createContext(deps: AccountsDeps): AccountsContext {
  const { db, linkTokenKey } = deps;
  // Personal fields are sealed under the user's data key on the way in and opened on the way out.
  const eventStore = withPersonalData(db, deps.eventStore);
  const clock = deps.clock ?? (() => new Date());
  const passwordCost = deps.passwordCost ?? DEFAULT_SCRYPT_COST;
  const queries = createQueries(db);
  let decoy: Promise<string> | undefined;

  const runner = createCommandRunner({
    db,
    eventStore,
    decider: userDecider,
    fromStored: toUserEvent,
    project: createProjection(linkTokenKey),
    errors: { refused, staleVersion, changedConcurrently },
    // Two first sign-ups raced for the site's first-user row: decide the loser again, as a later user.
    retryable: (err) => violatedUniqueRule(err) === 'first-user',
  });
  const run: RunCommand<UserCommand> = observeCommands(runner, deps.onCommand);

  return {
    db,
    queries,
    run,
    clock,
    passwordCost,
    site() {
      const config = deps.siteConfig.current();
      return { smtpConfigured: smtpConfigured(config), builtinAuth: builtinAuthEnabled(config) };
    },
    sealerFor: (userId) => (type) => sealToken(newLinkToken(), linkTokenKey, userId, type),
    async getUser(userId) {
      const user = await queries.user(userId);
      if (!user) throw userNotFound();
      return user;
    },
    decoyHash() {
      decoy ??= hashPassword(newLinkToken(), passwordCost);
      return decoy;
    },
    deferred: createDeferred(),
  };
}
