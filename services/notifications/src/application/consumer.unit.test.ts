import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MalformedMessageError } from '@sitemail/bus';
import { type FleetEvent, sources, topics, toWireMessage } from '@sitemail/contracts';
import { codeMonitorTriggered, Stream } from '../../test/events.ts';
import { decodeFleetMessage, decodeOrSkipFleetMessage } from './consumer.ts';

const message = (topic: string, event: FleetEvent, headers: Record<string, string | undefined> = {}) => {
  const wire = toWireMessage(
    event,
    topic === topics.codeMonitoringEvents ? sources.codeMonitoring : sources.accounts,
  );
  const merged = Object.fromEntries(
    Object.entries({ ...wire.headers, ...headers }).filter((e): e is [string, string] => e[1] !== undefined),
  );
  return {
    topic,
    partition: 0,
    offset: '0',
    key: wire.key,
    value: Buffer.from(wire.value),
    headers: merged,
    timestamp: 0,
  };
};

const refusal = (fn: () => unknown): string => {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof MalformedMessageError, String(err));
    return err.message;
  }
  assert.fail('accepted');
};

describe('decodeFleetMessage: topic authority', () => {
  const user = new Stream().created({ email: 'a@example.com', verified: true, siteAdmin: true });
  const monitor = codeMonitorTriggered(user.userId);

  it("takes each topic's own types from its own producer", () => {
    assert.equal(decodeFleetMessage(message(topics.accountsEvents, user)).id, user.id);
    assert.equal(decodeFleetMessage(message(topics.codeMonitoringEvents, monitor)).id, monitor.id);
  });

  it('refuses a message without a source, a ce_type that is not the body, an unknown topic', () => {
    assert.equal(
      refusal(() => decodeFleetMessage(message(topics.accountsEvents, user, { ce_source: undefined }))),
      `UserCreated (source none) is refused on topic ${topics.accountsEvents}: it carries events from ${sources.accounts} only`,
    );
    assert.equal(
      refusal(() => decodeFleetMessage(message(topics.accountsEvents, user, { ce_type: 'EmailVerified' }))),
      `UserCreated (source ${sources.accounts}) is refused on topic ${topics.accountsEvents}: its ce_type header says "EmailVerified"`,
    );
    assert.equal(
      refusal(() => decodeFleetMessage(message('somebody.else.v1', user))),
      `UserCreated (source ${sources.accounts}) is refused on topic somebody.else.v1: notifications consumes no such topic`,
    );
    assert.match(
      refusal(() =>
        decodeFleetMessage(message(topics.accountsEvents, monitor, { ce_source: sources.accounts })),
      ),
      /CodeMonitorTriggered \(source \/services\/accounts\) is refused on topic accounts\.user-events\.v1: it carries the \d+ event types of \/services\/accounts only/,
    );
  });

  it("skips a well-formed event of a type its topic's owner added later; dead-letters it from anyone else", () => {
    const later = { ...user, type: 'UserRenamed', data: {} } as unknown as FleetEvent;
    assert.equal(decodeOrSkipFleetMessage(message(topics.accountsEvents, later)), undefined);
    assert.equal(decodeOrSkipFleetMessage(message(topics.accountsEvents, user))?.id, user.id);
    assert.match(
      refusal(() =>
        decodeOrSkipFleetMessage(
          message(topics.accountsEvents, later, { ce_source: sources.codeMonitoring }),
        ),
      ),
      /unknown event type "UserRenamed"/,
    );
    assert.match(
      refusal(() =>
        decodeOrSkipFleetMessage(
          message(topics.codeMonitoringEvents, later, { ce_source: sources.accounts }),
        ),
      ),
      /unknown event type "UserRenamed"/,
    );
  });
});
