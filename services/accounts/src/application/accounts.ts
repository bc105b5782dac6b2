import { type AccountsDeps, createContext } from './context.ts';
import { addressUseCases } from './use-cases/addresses.ts';
import { apiKeyUseCases } from './use-cases/api-keys.ts';
import { authenticationUseCases } from './use-cases/authentication.ts';
import { deleteUserUseCases } from './use-cases/delete-user.ts';
import { invitationUseCases } from './use-cases/invitations.ts';
import { passwordUseCases } from './use-cases/passwords.ts';
import { queryUseCases } from './use-cases/queries.ts';
import { signUpUseCases } from './use-cases/sign-up.ts';
import { siteAdminUseCases } from './use-cases/site-admin.ts';

export type { AccountsDeps } from './context.ts';
export type { Principal } from './use-cases/authentication.ts';

/**
 * The accounts facade the HTTP layer calls: each use case runs its command through the one
 * command runner (read the user's stream, decide, append with the projection in the same
 * transaction); reads come from the read models.
 */
export function createAccounts(deps: AccountsDeps) {
  const ctx = createContext(deps);
  return {
    ...queryUseCases(ctx),
    ...signUpUseCases(ctx),
    ...addressUseCases(ctx),
    ...passwordUseCases(ctx),
    ...apiKeyUseCases(ctx),
    ...siteAdminUseCases(ctx),
    ...invitationUseCases(ctx),
    ...authenticationUseCases(ctx),
    ...deleteUserUseCases(ctx),
  };
}

export type Accounts = ReturnType<typeof createAccounts>;
