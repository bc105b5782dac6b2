import { type Database, migrate } from '@sitemail/db';
import { prepareEventStore } from '@sitemail/event-store';
import { accountsMigrations } from './migrations.ts';

/** Applies the event store's and accounts' migrations (idempotent; safe when several instances start). */
export async function prepareAccountsDatabase(db: Database): Promise<void> {
  await prepareEventStore(db);
  await migrate(db, 'accounts', accountsMigrations);
}
