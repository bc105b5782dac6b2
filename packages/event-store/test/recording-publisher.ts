import type { OutgoingMessage, Publisher } from '@sitemail/bus';

/**
 * A Publisher that keeps what it was given, for relay tests that need no broker. It can be told
 * to refuse the next calls (a bus that is down) or to hold calls until released (a slow bus).
 */
export class RecordingPublisher implements Publisher {
  readonly published: Array<OutgoingMessage & { topic: string }> = [];
  calls = 0;
  refuseNext = 0;
  private held: Array<() => void> | null = null;

  async publish(topic: string, messages: OutgoingMessage[]): Promise<void> {
    this.calls++;
    if (this.held) await new Promise<void>((resolve) => this.held?.push(resolve));
    if (this.refuseNext > 0) {
      this.refuseNext--;
      throw new Error('bus unavailable');
    }
    for (const m of messages) this.published.push({ ...m, topic });
  }

  hold(): void {
    this.held ??= [];
  }

  release(): void {
    const held = this.held ?? [];
    this.held = null;
    for (const resolve of held) resolve();
  }

  get heldCalls(): number {
    return this.held?.length ?? 0;
  }

  async close(): Promise<void> {}
}

/** Resolves once `predicate` holds, checking every few ms; rejects naming `what` after `timeoutMs`. */
export async function eventually(
  predicate: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 20_000,
) {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
