import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Database } from '@sitemail/db';
import { createMetricsRegistry } from '@sitemail/service-kit';
import type { QueueState } from './delivery/circuit-breaker.ts';
import { createNotificationsMetrics, smtpReplyClass } from './metrics.ts';

describe('smtpReplyClass', () => {
  const at = { startedAt: new Date(0), finishedAt: new Date(5) };
  it('classes an answer by its reply code, a failure without one as connection, and no send as nothing', () => {
    const cases: [Parameters<typeof smtpReplyClass>[0], string | undefined][] = [
      [{ ...at, status: 'sent' }, '2xx'],
      [{ ...at, status: 'deferred', step: 'envelope', responseCode: 450 }, '4xx'],
      [{ ...at, status: 'throttled', step: 'envelope', responseCode: 421 }, '4xx'],
      [{ ...at, status: 'failed', step: 'data', responseCode: 554 }, '5xx'],
      [{ ...at, status: 'deferred', step: 'connect' }, 'connection'],
      [{ ...at, status: 'deferred', step: 'tls' }, 'connection'],
      [{ ...at, status: 'failed', step: 'render' }, undefined],
      [{ ...at, status: 'failed', step: 'link-expired' }, undefined],
      [{ ...at, status: 'deferred', step: 'config' }, undefined],
    ];
    for (const [outcome, expected] of cases)
      assert.equal(smtpReplyClass(outcome), expected, JSON.stringify(outcome));
  });
});

describe('notifications_delivery_queue_paused', () => {
  it("reads 1 for the pause's cause while the queue is paused, 0 otherwise", async () => {
    let state: QueueState = { state: 'sending' };
    const registry = createMetricsRegistry();
    // No database is read for this gauge.
    createNotificationsMetrics(registry, {} as Database, () => state);
    const read = async () => registry.getSingleMetricAsString('notifications_delivery_queue_paused');
    assert.match(await read(), /notifications_delivery_queue_paused\{cause="sender"\} 0/);
    state = {
      state: 'paused',
      cause: 'sender',
      reason: 'mail: 535 5.7.8 Authentication credentials invalid',
      since: new Date(),
      nextProbeAt: new Date(),
      probes: 0,
    };
    assert.match(await read(), /notifications_delivery_queue_paused\{cause="sender"\} 1/);
    assert.match(await read(), /notifications_delivery_queue_paused\{cause="unreachable"\} 0/);
  });
});

describe('notifications_retention_purged_total', () => {
  it('counts what each retention run purged, by table', async () => {
    const registry = createMetricsRegistry();
    const metrics = createNotificationsMetrics(registry, {} as Database);
    metrics.onPurged({ deliveries: 3, attempts: 5, processedEvents: 7 });
    metrics.onPurged({ deliveries: 1, attempts: 0, processedEvents: 0 });
    const text = await registry.getSingleMetricAsString('notifications_retention_purged_total');
    assert.match(text, /notifications_retention_purged_total\{table="deliveries"\} 4/);
    assert.match(text, /notifications_retention_purged_total\{table="delivery_attempts"\} 5/);
    assert.match(text, /notifications_retention_purged_total\{table="processed_events"\} 7/);
  });
});
