export { type AccountsAppOptions, accountsApp } from './app.ts';
export type { Accounts, Principal } from './application/accounts.ts';
export * from './domain/user/index.ts';
export { type RunningAccounts, type StartAccountsOptions, startAccounts } from './main.ts';
export { toAccountsEvent, toAccountsMessage } from './messages.ts';
export { accountsMigrations } from './store/migrations.ts';
export { prepareAccountsDatabase } from './store/prepare.ts';
export { readModelQueries, rebuildReadModels } from './store/rebuild.ts';
