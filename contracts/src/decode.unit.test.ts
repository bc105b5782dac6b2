import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  decode,
  EventDecodeError,
  type EventType,
  examples,
  topicAuthority,
  topics,
  toWireMessage,
} from './index.ts';

const wrong = (fn: () => unknown) => {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof EventDecodeError, `an EventDecodeError, not ${err}`);
    return err;
  }
  assert.fail('decode accepted it');
};

describe('decode', () => {
  it('returns every example, from bytes or text, by its type and by its topic', () => {
    for (const [type, event] of Object.entries(examples)) {
      const wire = toWireMessage(event);
      assert.deepEqual(decode(type as EventType, Buffer.from(wire.value)), event);
      assert.deepEqual(decode(type as EventType, new TextEncoder().encode(wire.value)), event);
      const topic = Object.entries(topicAuthority).find(([, a]) => a.types.includes(type))?.[0];
      assert.ok(topic, `${type} belongs to a topic`);
      assert.deepEqual(decode(topic, wire.value), event);
    }
  });

  it('names the wrong field, a missing one included', () => {
    const badEmail = { ...examples.UserCreated, data: { ...examples.UserCreated.data, email: 'nope' } };
    const e1 = wrong(() => decode(topics.accountsEvents, JSON.stringify(badEmail)));
    assert.equal(e1.field, '/data/email');
    assert.match(
      e1.message,
      /^not a valid accounts\.user-events\.v1 event: field \/data\/email must match format "email"$/,
    );
    const { username: _u, ...noUsername } = examples.UserCreated.data;
    const e2 = wrong(() =>
      decode('UserCreated', JSON.stringify({ ...examples.UserCreated, data: noUsername })),
    );
    assert.equal(e2.field, '/data/username');
    assert.match(e2.message, /field \/data\/username must have required properties username/);
  });

  it('refuses a type that does not belong where it was read', () => {
    const onOtherTopic = wrong(() =>
      decode(topics.codeMonitoringEvents, JSON.stringify(examples.UserCreated)),
    );
    assert.equal(onOtherTopic.field, '/type');
    assert.match(onOtherTopic.message, /"UserCreated", which is not expected on code-monitoring/);
    const otherType = wrong(() => decode('EmailVerified', JSON.stringify(examples.UserCreated)));
    assert.match(otherType.message, /not expected an event of type EmailVerified/);
  });

  it('refuses what is not an event at all, and an unknown topic or type as a caller error', () => {
    assert.equal(wrong(() => decode('UserCreated', '{oops')).field, '');
    assert.match(wrong(() => decode('UserCreated', null)).message, /message empty message/);
    assert.equal(wrong(() => decode(topics.accountsEvents, '{"type":"Nope"}')).field, '/type');
    assert.throws(() => decode(topics.notificationsDeadLetter, '{}'), {
      name: 'TypeError',
      message: /"notifications.dead-letter.v1" is neither an event topic .* nor an event type/,
    });
  });
});

describe('EventDecodeError.mayIgnore', () => {
  const later = { ...examples.UserDeleted, type: 'UserRenamed', data: {} };
  const value = JSON.stringify(later);
  const headers = (source: string, type = 'UserRenamed') => ({
    ce_source: Buffer.from(source),
    ce_type: Buffer.from(type),
  });

  it("skips a well-formed unknown type from the topic's owner, with kafkajs' Buffer headers", () => {
    const err = wrong(() => decode(topics.accountsEvents, value));
    assert.equal(err.unknownType, 'UserRenamed');
    assert.equal(err.mayIgnore(headers('/services/accounts')), true);
  });

  it('does not skip it from anybody else, with ce_type disagreeing, or an invalid event', () => {
    const err = wrong(() => decode(topics.accountsEvents, value));
    assert.equal(err.mayIgnore(headers('/services/code-monitoring')), false);
    assert.equal(err.mayIgnore(headers('/services/accounts', 'UserCreated')), false);
    assert.equal(err.mayIgnore(undefined), false);
    const invalid = wrong(() =>
      decode(topics.accountsEvents, JSON.stringify({ ...examples.UserCreated, id: 'x' })),
    );
    assert.equal(invalid.unknownType, undefined);
    assert.equal(invalid.mayIgnore(headers('/services/accounts', 'UserCreated')), false);
  });
});
