import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type BusMessage, MalformedMessageError } from '@sitemail/bus';
import { examples, sources, topics, toWireMessage } from '@sitemail/contracts';
import { decodeAddressEventMessage } from './address-events.ts';

const message = (event: object, headers: Record<string, string> = {}): BusMessage => {
  const wire = toWireMessage(event as typeof examples.EmailAddressUndeliverable);
  return {
    topic: topics.notificationsAddressEvents,
    partition: 0,
    offset: '0',
    key: wire.key,
    value: Buffer.from(wire.value),
    headers: { ...wire.headers, ...headers },
    timestamp: 0,
  };
};

describe("accounts' decoding of notifications' address events", () => {
  it('returns a valid event from notifications', () => {
    assert.deepEqual(
      decodeAddressEventMessage(message(examples.EmailAddressUndeliverable)),
      examples.EmailAddressUndeliverable,
    );
  });

  it('skips a newer type from notifications (the fleet rule), and dead-letters it from anybody else', () => {
    const later = { ...examples.EmailAddressDeliverable, type: 'EmailAddressDisposable', data: {} };
    // (toWireMessage knows no such type, so the headers are those notifications would write.)
    assert.equal(decodeAddressEventMessage(message(later, { ce_source: sources.notifications })), undefined);
    assert.throws(
      () => decodeAddressEventMessage(message(later, { ce_source: sources.codeMonitoring })),
      MalformedMessageError,
    );
  });

  it('dead-letters a valid event not from notifications, or whose ce_type disagrees, or an invalid body', () => {
    assert.throws(
      () =>
        decodeAddressEventMessage(
          message(examples.EmailAddressUndeliverable, { ce_source: sources.accounts }),
        ),
      (err: Error) =>
        err instanceof MalformedMessageError &&
        /carries events from \/services\/notifications only/.test(err.message),
    );
    assert.throws(
      () =>
        decodeAddressEventMessage(
          message(examples.EmailAddressUndeliverable, { ce_type: 'EmailAddressDeliverable' }),
        ),
      (err: Error) => err instanceof MalformedMessageError && /ce_type header says/.test(err.message),
    );
    assert.throws(
      () =>
        decodeAddressEventMessage(
          message({ ...examples.EmailAddressUndeliverable, address: 'Carol@Example.org' }),
        ),
      (err: Error) => err instanceof MalformedMessageError && /field \/address/.test(err.message),
    );
    assert.throws(() => decodeAddressEventMessage(message(examples.UserCreated)), MalformedMessageError);
  });
});
