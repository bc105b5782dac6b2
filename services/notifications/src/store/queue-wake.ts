import { type Database, notify, type Queryable, type Unlisten } from '@sitemail/db';

/**
 * Deliveries queued in one process wake the delivery workers of every process: the queueing
 * transaction notifies the schema's `deliveries` channel (delivered on commit only), and each
 * worker LISTENs. The worker's poll (`pollIntervalMs`) stays as the safety net.
 */
const CHANNEL = 'deliveries';

/** Run inside the transaction that queued deliveries: the wake goes out with its commit. */
export const notifyQueued = (tx: Queryable): Promise<void> => notify(tx, CHANNEL);

export const onQueued = (db: Database, listener: () => void): Unlisten => db.listen(CHANNEL, listener);
