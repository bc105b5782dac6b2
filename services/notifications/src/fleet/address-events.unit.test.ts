import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decode, topics } from '@sitemail/contracts';
import { type AddressEventRow, toAddressEvent, toAddressEventMessage } from './address-events.ts';

const row = (o: Partial<AddressEventRow> = {}): AddressEventRow => ({
  seq: '7',
  event_id: '1b2c3d4e-5f60-4718-8a9b-0c1d2e3f4a5b',
  address: 'alice@example.com',
  type: 'EmailAddressUndeliverable',
  cause: 'smtp-reply',
  delivery_id: '2c3d4e5f-6071-4829-9bac-1d2e3f4a5b6c',
  reply: '550 5.1.1 <alice@example.com>: Recipient address rejected: User unknown',
  response_code: 550,
  occurred_at: new Date('2026-12-01T10:00:00Z'),
  ...o,
});

describe('address events from outbox rows', () => {
  it('a listing carries the basic code, the enhanced status read from the reply, the delivery and the position', () => {
    const built = toAddressEventMessage(row());
    assert.ok(built.ok);
    assert.equal(built.message.key, 'alice@example.com');
    assert.equal(built.message.headers?.ce_source, '/services/notifications');
    assert.deepEqual(decode(topics.notificationsAddressEvents, built.message.value as string), {
      id: '1b2c3d4e-5f60-4718-8a9b-0c1d2e3f4a5b',
      type: 'EmailAddressUndeliverable',
      address: 'alice@example.com',
      position: 7,
      time: '2026-12-01T10:00:00.000Z',
      schemaVersion: 1,
      data: {
        cause: 'smtp-reply',
        reply: {
          code: 550,
          enhancedStatus: '5.1.1',
          text: '550 5.1.1 <alice@example.com>: Recipient address rejected: User unknown',
        },
        deliveryId: '2c3d4e5f-6071-4829-9bac-1d2e3f4a5b6c',
      },
    });
  });

  it('bounds the reply text to 512 characters on one line; no enhanced status, no field; a non-4xx/5xx code is null', () => {
    const e = toAddressEvent(
      row({ reply: `550 no such user\r\n${'x'.repeat(900)}`, response_code: 250, cause: 'dsn' }),
    );
    assert.equal(e.type, 'EmailAddressUndeliverable');
    if (e.type !== 'EmailAddressUndeliverable') return;
    assert.equal(e.data.reply.text.length, 512);
    assert.ok(e.data.reply.text.startsWith('550 no such user x'));
    assert.equal(e.data.reply.enhancedStatus, undefined);
    assert.equal(e.data.reply.code, null);
    assert.equal(e.data.cause, 'dsn');
  });

  it('a lifting names its cause; an admin lifting names no delivery', () => {
    const lifted = (cause: string) =>
      toAddressEvent(row({ type: 'EmailAddressDeliverable', cause, reply: null, response_code: null }));
    assert.deepEqual(lifted('admin-lifted').data, { cause: 'admin-lifted', deliveryId: null });
    assert.deepEqual(lifted('accepted').data, {
      cause: 'accepted',
      deliveryId: '2c3d4e5f-6071-4829-9bac-1d2e3f4a5b6c',
    });
  });

  it('an address the contract cannot carry is refused with the field, not sent', () => {
    const built = toAddressEventMessage(row({ address: 'tab\there@example.com' }));
    assert.equal(built.ok, false);
    assert.match(!built.ok ? built.problems.join() : '', /^\/address /);
  });
});
