import pg from 'pg';
import type { Queryable } from './index.ts';

/**
 * Wake-ups between processes: a writer runs `notify(tx, 'events')` in its transaction, so Postgres
 * (or PGlite) sends the notification when, and only if, the transaction commits; whoever listens
 * on that channel in the same schema is called. A notification carries nothing (the listener reads
 * what is new), and one missed is never lost work: listeners keep polling as a safety net.
 */

/** Longest channel name Postgres takes (NAMEDATALEN - 1); pg_notify refuses longer ones. */
const MAX_CHANNEL = 63;
const NAME = /^[a-z][a-z0-9_]{0,19}$/;

/**
 * The Postgres channel of `name` in `schema`: several schemas (services, tests) share one server,
 * and each listens only to its own. A schema too long for the limit is cut: two schemas that share
 * that prefix then wake each other, which costs an empty read and nothing else.
 */
export function channelName(schema: string, name: string): string {
  if (!NAME.test(name)) throw new RangeError(`invalid channel name "${name}" (a-z, 0-9, _; up to 20)`);
  return `${schema.slice(0, MAX_CHANNEL - 2 - name.length)}__${name}`;
}

/**
 * Queues a wake-up on `name` for the schema `tx` runs in; it is delivered when the transaction
 * commits (never if it rolls back). Computed from `current_schema()` so any transaction can call it.
 */
export async function notify(tx: Queryable, name: string): Promise<void> {
  channelName('x', name); // validates the name
  await tx.query(`SELECT pg_notify(left(current_schema(), $1::int) || '__' || $2::text, '')`, [
    MAX_CHANNEL - 2 - name.length,
    name,
  ]);
}

export type Unlisten = () => Promise<void>;

/** How the listening connection reports trouble (it reconnects by itself). */
export type ListenLogger = (message: string) => void;

/**
 * One dedicated connection per Postgres database handle that LISTENs on every channel asked for.
 * It is opened on the first `listen` and reconnects whenever it is lost or cannot be opened
 * (backoff 100 ms doubling up to 5 s) until `close`. Notifications sent while no connection
 * listened are lost, so each listener is also called once every time its LISTEN takes effect (the
 * first time and after each reconnect): it reads what is new then, as after a notification.
 */
export class PostgresListener {
  private client: pg.Client | undefined;
  private connecting = false;
  /** The connection attempt under way, awaited by close so no socket outlives it. */
  private attempt: Promise<void> | undefined;
  private readonly channels = new Map<string, Set<() => void>>();
  private closed = false;
  private failures = 0;
  private retryTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly url: string,
    private readonly applicationName: string,
    private readonly log: ListenLogger = (m) => process.emitWarning(m),
  ) {}

  listen(channel: string, onNotify: () => void): Unlisten {
    if (this.closed) throw new Error('the database is closed');
    let set = this.channels.get(channel);
    const first = !set;
    if (!set) {
      set = new Set();
      this.channels.set(channel, set);
    }
    set.add(onNotify);
    const client = this.client;
    if (client) {
      if (first) {
        client.query(`LISTEN "${channel}"`).then(
          () => onNotify(),
          () => {
            // The connection failed meanwhile; the reconnect listens on every channel and calls back.
          },
        );
      } else queueMicrotask(onNotify);
    } else if (!this.connecting && !this.retryTimer) this.attempt = this.connect();
    return async () => {
      const listeners = this.channels.get(channel);
      if (!listeners?.delete(onNotify) || listeners.size > 0) return;
      this.channels.delete(channel);
      await this.client?.query(`UNLISTEN "${channel}"`).catch(() => {
        // The connection is gone: so is its LISTEN.
      });
    };
  }

  private async connect(): Promise<void> {
    this.connecting = true;
    const client = new pg.Client({
      connectionString: this.url,
      application_name: this.applicationName,
      // A peer that vanished without closing (a network cut) is noticed, not waited on for ever.
      keepAlive: true,
    });
    client.on('notification', (n) => {
      for (const listener of this.channels.get(n.channel) ?? []) listener();
    });
    const lost = (why: string) => {
      if (this.client !== client) return;
      this.client = undefined;
      client.removeAllListeners('end');
      client.end().catch(() => {});
      if (!this.closed) {
        this.log(`LISTEN connection lost (${why}); reconnecting`);
        this.scheduleReconnect();
      }
    };
    client.on('error', (err) => lost(err.message));
    client.on('end', () => lost('connection ended'));
    try {
      await client.connect();
      for (const channel of this.channels.keys()) await client.query(`LISTEN "${channel}"`);
    } catch (err) {
      this.connecting = false;
      client.removeAllListeners('end');
      client.end().catch(() => {});
      if (this.closed) return;
      if (this.failures === 0) this.log(`LISTEN connection failed (${(err as Error).message}); retrying`);
      this.scheduleReconnect();
      return;
    }
    this.connecting = false;
    if (this.closed) {
      await client.end().catch(() => {});
      return;
    }
    this.client = client;
    this.failures = 0;
    // Whatever was notified while no connection listened is found by this one read.
    for (const set of this.channels.values()) for (const listener of set) listener();
  }

  private scheduleReconnect(): void {
    if (this.closed || this.retryTimer) return;
    const delay = Math.min(5_000, 100 * 2 ** Math.min(this.failures++, 6));
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.attempt = this.connect();
    }, delay);
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.channels.clear();
    await this.attempt;
    const client = this.client;
    this.client = undefined;
    if (client) {
      client.removeAllListeners('end');
      await client.end().catch(() => {});
    }
  }
}
