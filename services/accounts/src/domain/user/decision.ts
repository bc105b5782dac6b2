import type { AccountsEventData } from '@sitemail/contracts';
import type { Refusal } from './refusals.ts';

/** What a command produces: the events to append (none for a repeat), or why it is refused. */
export type Decision = AccountsEventData[] | Refusal;
