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

describe('address events (notifications.address-events.v1)', () => {
  it('are keyed by the address, from notifications, and decode on their topic only', () => {
    const wire = toWireMessage(examples.EmailAddressUndeliverable);
    assert.equal(wire.key, 'carol@example.org');
    assert.equal(wire.headers.ce_subject, 'carol@example.org');
    assert.equal(wire.headers.ce_source, '/services/notifications');
    assert.deepEqual(
      decode(topics.notificationsAddressEvents, wire.value),
      examples.EmailAddressUndeliverable,
    );
    const onAccounts = wrong(() => decode(topics.accountsEvents, wire.value));
    assert.equal(onAccounts.unknownType, undefined, 'no user id: not an accounts envelope, dead-lettered');
    const userEvent = wrong(() =>
      decode(topics.notificationsAddressEvents, JSON.stringify(examples.UserCreated)),
    );
    assert.equal(userEvent.unknownType, undefined);
  });

  it('refuse an address with capitals, a reply text over 512 characters, or a 2xx code', () => {
    const e = examples.EmailAddressUndeliverable;
    const field = (body: object) =>
      wrong(() => decode(topics.notificationsAddressEvents, JSON.stringify(body))).field;
    assert.equal(field({ ...e, address: 'Carol@example.org' }), '/address');
    assert.equal(
      field({ ...e, data: { ...e.data, reply: { ...e.data.reply, text: 'x'.repeat(513) } } }),
      '/data/reply/text',
    );
    assert.equal(
      field({ ...e, data: { ...e.data, reply: { ...e.data.reply, code: 250 } } }),
      '/data/reply/code',
    );
    assert.equal(
      field({ ...examples.EmailAddressDeliverable, data: { cause: 'smtp-reply', deliveryId: null } }),
      '/data/cause',
    );
  });

  it('a newer address event type from notifications may be skipped; from anybody else it may not', () => {
    const later = { ...examples.EmailAddressDeliverable, type: 'EmailAddressDisposable', data: {} };
    const err = wrong(() => decode(topics.notificationsAddressEvents, JSON.stringify(later)));
    assert.equal(err.unknownType, 'EmailAddressDisposable');
    const from = (source: string) => ({ ce_source: source, ce_type: 'EmailAddressDisposable' });
    assert.equal(err.mayIgnore(from('/services/notifications')), true);
    assert.equal(err.mayIgnore(from('/services/accounts')), false);
  });
});
