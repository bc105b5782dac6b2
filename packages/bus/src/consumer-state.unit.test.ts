import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { describeConsumerState } from './consumer-state.ts';

describe('describeConsumerState', () => {
  const since = 1_000_000;
  const base = { groupId: 'notifications', since };

  it('says where the join is, why it retries or stalls, and how many partitions it has', () => {
    assert.equal(
      describeConsumerState({ ...base, phase: 'joining' }, since + 12_400),
      'joining group notifications (12 s)',
    );
    assert.equal(
      describeConsumerState({
        ...base,
        phase: 'retrying',
        attempt: 3,
        reason: 'KafkaJSConnectionError: refused',
      }),
      'group notifications join failed 3 time(s), retrying (KafkaJSConnectionError: refused)',
    );
    assert.equal(
      describeConsumerState({
        ...base,
        phase: 'stalled',
        reason: '3 partition(s) behind, no batch for 15 s',
      }),
      'group notifications not progressing (3 partition(s) behind, no batch for 15 s), restarting the consumer',
    );
    assert.equal(
      describeConsumerState({ ...base, phase: 'assigned', partitions: 2 }),
      'assigned 2 partition(s) of group notifications',
    );
    assert.equal(
      describeConsumerState({ ...base, phase: 'stopped' }),
      'the consumer of group notifications is stopped',
    );
  });
});
