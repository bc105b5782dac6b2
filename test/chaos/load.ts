/**
 * Load and accounting. Load is events on the topics as their producers would write them
 * (`toWireMessage`, keyed by user, CloudEvents headers): users as accounts publishes them, code
 * monitor notifications as code monitoring does (each carries a `cx-…` token that reaches the
 * email's subject, so the sink can say which expected email arrived), poison messages and
 * redelivered duplicates; or commands on accounts' HTTP API. The tracker follows the sink.
 */
import { randomUUID } from 'node:crypto';
import {
  type AccountsEventOf,
  type CodeMonitorTriggered,
  sources,
  topics,
  toWireMessage,
} from '@sitemail/contracts';
import type { Producer } from 'kafkajs';
import type { Sink } from './processes.ts';

export interface Recipient {
  id: string;
  email: string;
  position: number;
}

export interface WireMessage {
  key: string;
  value: string;
  headers: Record<string, string>;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** UserCreated for `n` users with a verified primary (origin api), as accounts publishes them. */
export function recipients(n: number, tag: string): { recipients: Recipient[]; messages: WireMessage[] } {
  const list: Recipient[] = [];
  const messages: WireMessage[] = [];
  for (let i = 0; i < n; i++) {
    const id = randomUUID();
    const email = `r${i}-${tag}@chaos.example.com`;
    list.push({ id, email, position: 1 });
    const event: AccountsEventOf<'UserCreated'> = {
      id: randomUUID(),
      type: 'UserCreated',
      userId: id,
      position: 1,
      time: new Date().toISOString(),
      schemaVersion: 1,
      data: {
        username: `r${i}-${tag}`,
        email,
        emailVerified: true,
        origin: 'api',
        authProvider: { type: 'builtin' },
        siteAdmin: false,
      },
    };
    messages.push(toWireMessage(event) as WireMessage);
  }
  return { recipients: list, messages };
}

/** `count` code monitor notifications round-robin over the recipients; token `cx-<tag>e<i>`. */
export function monitorEvents(
  to: Recipient[],
  count: number,
  tag: string,
): { keys: string[]; messages: WireMessage[] } {
  const keys: string[] = [];
  const messages: WireMessage[] = [];
  for (let i = 0; i < count; i++) {
    const r = to[i % to.length]!;
    const key = `cx-${tag}e${i}`;
    keys.push(key);
    const event: CodeMonitorTriggered = {
      id: randomUUID(),
      type: 'CodeMonitorTriggered',
      userId: r.id,
      position: r.position++,
      time: new Date().toISOString(),
      schemaVersion: 1,
      data: {
        monitorId: randomUUID(),
        monitorName: `${key} chaos`,
        query: 'repo:^github\\.com/acme/ TODO',
        resultCount: 1,
        resultsPath: '/code-monitoring/m1/results',
      },
    };
    messages.push(toWireMessage(event, sources.codeMonitoring) as WireMessage);
  }
  return { keys, messages };
}

/** Malformed messages of the kinds a consumer must dead-letter and move past. */
export function poison(n: number): WireMessage[] {
  return Array.from({ length: n }, (_, i): WireMessage => {
    const key = randomUUID();
    const kind = i % 3;
    if (kind === 0)
      return {
        key,
        value: '{not json',
        headers: { ce_type: 'CodeMonitorTriggered', ce_source: sources.codeMonitoring },
      };
    if (kind === 1) {
      // well-formed JSON, wrong shape
      return {
        key,
        value: JSON.stringify({ id: randomUUID(), type: 'CodeMonitorTriggered', userId: key }),
        headers: { ce_type: 'CodeMonitorTriggered', ce_source: sources.codeMonitoring, ce_id: randomUUID() },
      };
    }
    // an account event on code monitoring's topic: not its producer's to send
    return {
      key,
      value: JSON.stringify({ id: randomUUID(), type: 'UserDeleted', userId: key }),
      headers: { ce_type: 'UserDeleted', ce_source: sources.accounts, ce_id: randomUUID() },
    };
  });
}

/**
 * Publishes in chunks, each retried until the brokers take it (a broker down is a fault the
 * suite injects: the load keeps coming, as real producers' would). `onProgress` hears the count sent.
 */
export async function publish(
  producer: Producer,
  topic: string,
  messages: WireMessage[],
  o: { chunk?: number; pauseMs?: number; onProgress?: (sent: number) => void | Promise<void> } = {},
): Promise<{ retries: number }> {
  const chunk = o.chunk ?? 100;
  let retries = 0;
  for (let i = 0; i < messages.length; i += chunk) {
    const part = messages.slice(i, i + chunk);
    for (;;) {
      try {
        await producer.send({ topic, acks: -1, messages: part });
        break;
      } catch {
        retries++;
        await sleep(500);
      }
    }
    await o.onProgress?.(Math.min(i + chunk, messages.length));
    if (o.pauseMs) await sleep(o.pauseMs);
  }
  return { retries };
}

export const topicOf = { users: topics.accountsEvents, monitors: topics.codeMonitoringEvents } as const;

/** Follows the sink: every acceptance by Message-ID and key, and when each arrived. */
export class Tracker {
  readonly byMessageId = new Map<string, number>();
  readonly messageIdsByKey = new Map<string, Set<string>>();
  readonly firstAt = new Map<string, number>();
  readonly times: number[] = [];
  /** Keys the sink refused with 550, once per refusal. */
  refused: string[] = [];
  private seen = 0;

  constructor(private readonly sink: Sink) {}

  async poll(): Promise<void> {
    const stats = await this.sink.stats(this.seen);
    this.seen += stats.accepted.length;
    for (const [id, at, key] of stats.accepted) {
      this.byMessageId.set(id, (this.byMessageId.get(id) ?? 0) + 1);
      if (!this.firstAt.has(id)) this.firstAt.set(id, at);
      const ids = this.messageIdsByKey.get(key) ?? new Set();
      ids.add(id);
      this.messageIdsByKey.set(key, ids);
      this.times.push(at);
    }
    this.refused = stats.refused550;
  }

  received(keys: Iterable<string>): number {
    let n = 0;
    for (const k of keys) if (this.messageIdsByKey.has(k)) n++;
    return n;
  }

  /** Waits until every key arrived or the timeout passed; returns when the last one did (or undefined). */
  async waitFor(keys: string[], timeoutMs: number): Promise<number | undefined> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      await this.poll();
      const refused = new Set(this.refused);
      if (this.received(keys) + keys.filter((k) => refused.has(k)).length >= keys.length)
        return Math.max(...this.times.slice(-1), 0);
      if (Date.now() > deadline) return undefined;
      await sleep(250);
    }
  }

  /** When the last of `keys` first arrived. */
  lastFirstArrival(keys: string[]): number {
    let last = 0;
    for (const k of keys) {
      const ids = this.messageIdsByKey.get(k);
      if (!ids) continue;
      last = Math.max(last, Math.min(...[...ids].map((id) => this.firstAt.get(id) ?? 0)));
    }
    return last;
  }

  /** Acceptances beyond the first of each Message-ID, with when the first copy arrived. */
  duplicates(): { messageId: string; extra: number; firstAt: number }[] {
    return [...this.byMessageId]
      .filter(([, n]) => n > 1)
      .map(([messageId, n]) => ({ messageId, extra: n - 1, firstAt: this.firstAt.get(messageId) ?? 0 }));
  }

  /** Keys that arrived under more than one Message-ID: one event decided into two emails. */
  doubled(): string[] {
    return [...this.messageIdsByKey].filter(([, ids]) => ids.size > 1).map(([k]) => k);
  }

  /** First acceptance at or after `t` (delivery resumed), if any. */
  firstAfter(t: number): number | undefined {
    return this.times.find((x) => x >= t);
  }

  /** The longest silence at the sink between `from` and `to` (ms). */
  longestGap(from: number, to: number): number {
    let last = from;
    let gap = 0;
    for (const t of this.times) {
      if (t < from || t > to) continue;
      gap = Math.max(gap, t - last);
      last = t;
    }
    return Math.max(gap, to - last);
  }
}
