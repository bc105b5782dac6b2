import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type Break, type BreakKind, findBreakingChanges } from './compat.ts';
import { eventJsonSchemas, type JsonSchema } from './json-schema.ts';

type Mutable = { [key: string]: Mutable } & { required?: string[]; anyOf?: Mutable[] };

const released = eventJsonSchemas() as Record<string, JsonSchema>;
/** The current schemas after an edit made to a copy of the released ones. */
const edit = (change: (schemas: Record<string, Mutable>) => void): Record<string, JsonSchema> => {
  const copy = structuredClone(released) as unknown as Record<string, Mutable>;
  change(copy);
  return copy as unknown as Record<string, JsonSchema>;
};
const summary = (breaks: Break[]) => breaks.map((b) => `${b.event}${b.path} ${b.kind}`);
const assertBreak = (current: Record<string, JsonSchema>, expected: `${string} ${BreakKind}`[]) =>
  assert.deepEqual(summary(findBreakingChanges(released, current)).sort(), [...expected].sort());

describe('findBreakingChanges', () => {
  it('finds nothing when nothing changed', () => {
    assert.deepEqual(findBreakingChanges(released, eventJsonSchemas()), []);
  });

  describe('detects each kind of break', () => {
    it('a removed event type', () => {
      assertBreak(
        edit((s) => delete s.ApiKeyRevoked),
        ['ApiKeyRevoked event-removed'],
      );
    });

    it('a removed required field', () => {
      assertBreak(
        edit((s) => {
          const data = s.UserCreated!.properties!.data!;
          delete data.properties!.siteAdmin;
          data.required = data.required!.filter((f) => f !== 'siteAdmin');
        }),
        ['UserCreated/data/siteAdmin required-field-removed'],
      );
    });

    it('a renamed required field (removed, and a new required one)', () => {
      assertBreak(
        edit((s) => {
          const data = s.EmailVerified!.properties!.data!;
          data.properties!.address = data.properties!.email!;
          delete data.properties!.email;
          data.required = data.required!.map((f) => (f === 'email' ? 'address' : f));
        }),
        [
          'EmailVerified/data/email required-field-removed',
          'EmailVerified/data/address field-newly-required',
        ],
      );
    });

    it('a required field made optional', () => {
      assertBreak(
        edit((s) => {
          s.ApiKeyCreated!.required = s.ApiKeyCreated!.required!.filter((f) => f !== 'userId');
        }),
        ['ApiKeyCreated/userId required-field-made-optional'],
      );
    });

    it('a changed type', () => {
      assertBreak(
        edit((s) => {
          s.UserCreated!.properties!.position = { type: 'string' } as unknown as Mutable;
        }),
        ['UserCreated/position type-changed'],
      );
      assertBreak(
        edit((s) => {
          s.ApiKeyCreated!.properties!.data!.properties!.name!.type = [
            'string',
            'null',
          ] as unknown as Mutable;
        }),
        ['ApiKeyCreated/data/name type-changed'],
      );
    });

    it('a changed const (the event type or the schema version)', () => {
      assertBreak(
        edit((s) => {
          s.EmailAdded!.properties!.schemaVersion!.const = 2 as unknown as Mutable;
        }),
        ['EmailAdded/schemaVersion const-changed'],
      );
    });

    it('an enum narrowed, and an enum widened', () => {
      assertBreak(
        edit((s) => {
          const origin = s.UserCreated!.properties!.data!.properties!.origin!;
          origin.anyOf = origin.anyOf!.filter((b) => (b.const as unknown) !== 'api');
        }),
        ['UserCreated/data/origin values-removed'],
      );
      assertBreak(
        edit((s) => {
          const via = s.PasswordChanged!.properties!.data!.properties!.via!;
          via.anyOf = [...via.anyOf!, { type: 'string', const: 'magic-link' } as unknown as Mutable];
        }),
        ['PasswordChanged/data/via values-added'],
      );
    });

    it('a newly required field', () => {
      assertBreak(
        edit((s) => {
          const data = s.EmailAdded!.properties!.data!;
          data.properties!.addedBy = { type: 'string', format: 'uuid' } as unknown as Mutable;
          data.required = [...data.required!, 'addedBy'];
        }),
        ['EmailAdded/data/addedBy field-newly-required'],
      );
      assertBreak(
        edit((s) => {
          const data = s.UserCreated!.properties!.data!;
          data.required = [...data.required!, 'displayName'];
        }),
        ['UserCreated/data/displayName field-newly-required'],
      );
    });

    it('a field made stricter: pattern or format added, bounds tightened, unknown fields refused', () => {
      assertBreak(
        edit((s) => {
          s.UserCreated!.properties!.data!.properties!.username!.pattern = '^[a-z]+$' as unknown as Mutable;
        }),
        ['UserCreated/data/username constraint-stricter'],
      );
      assertBreak(
        edit((s) => {
          s.UserInvited!.properties!.data!.properties!.inviterUsername!.format =
            'hostname' as unknown as Mutable;
        }),
        ['UserInvited/data/inviterUsername constraint-stricter'],
      );
      assertBreak(
        edit((s) => {
          s.ApiKeyCreated!.properties!.data!.properties!.name!.maxLength = 50 as unknown as Mutable;
        }),
        ['ApiKeyCreated/data/name constraint-stricter'],
      );
      assertBreak(
        edit((s) => {
          s.EmailRemoved!.properties!.data!.additionalProperties = false as unknown as Mutable;
        }),
        ['EmailRemoved/data constraint-stricter'],
      );
      assertBreak(
        edit((s) => {
          s.CodeMonitorTriggered!.properties!.data!.properties!.resultCount!.minimum =
            2 as unknown as Mutable;
        }),
        ['CodeMonitorTriggered/data/resultCount constraint-stricter'],
      );
    });

    it('a field made looser, which readers of the released version would reject', () => {
      assertBreak(
        edit((s) => {
          s.ApiKeyCreated!.properties!.data!.properties!.name!.maxLength = 1000 as unknown as Mutable;
        }),
        ['ApiKeyCreated/data/name constraint-looser'],
      );
      assertBreak(
        edit((s) => {
          delete s.ApiKeyCreated!.properties!.data!.properties!.secretSha256!.pattern;
        }),
        ['ApiKeyCreated/data/secretSha256 constraint-looser'],
      );
    });

    it('inside nested objects (the sealed token)', () => {
      assertBreak(
        edit((s) => {
          const token = s.PasswordResetRequested!.properties!.data!.properties!.token!;
          token.required = token.required!.filter((f) => f !== 'kid');
          delete token.properties!.kid;
        }),
        ['PasswordResetRequested/data/token/kid required-field-removed'],
      );
    });

    it('any other constraint keyword that changed', () => {
      assertBreak(
        edit((s) => {
          s.EmailAdded!.properties!.data!.properties!.email!.contentEncoding = 'base64' as unknown as Mutable;
        }),
        ['EmailAdded/data/email changed'],
      );
    });
  });

  describe('accepts compatible changes', () => {
    it('a new optional field', () => {
      assertBreak(
        edit((s) => {
          s.ApiKeyCreated!.properties!.data!.properties!.expiresAt = {
            type: 'string',
            format: 'date-time',
          } as unknown as Mutable;
        }),
        [],
      );
    });

    it('a new event type', () => {
      assertBreak(
        edit((s) => {
          s.OrganizationCreated = structuredClone(s.EmailAdded!);
          s.OrganizationCreated.properties!.type!.const = 'OrganizationCreated' as unknown as Mutable;
        }),
        [],
      );
    });

    it('an optional field removed (its readers already handle its absence)', () => {
      assertBreak(
        edit((s) => {
          delete s.UserCreated!.properties!.data!.properties!.displayName;
        }),
        [],
      );
    });

    it('documentation: descriptions, titles, examples', () => {
      assertBreak(
        edit((s) => {
          s.UserCreated!.description = 'Reworded.' as unknown as Mutable;
          s.UserCreated!.properties!.data!.properties!.username!.description =
            'The login name' as unknown as Mutable;
          s.UserCreated!.properties!.data!.properties!.username!.examples = ['alice'] as unknown as Mutable;
          s.UserCreated!.properties!.data!.properties!.origin!.title = 'Origin' as unknown as Mutable;
        }),
        [],
      );
    });

    it('a reworded description of a required field', () => {
      assertBreak(
        edit((s) => {
          s.EmailVerified!.properties!.data!.properties!.email!.description =
            'The verified address' as unknown as Mutable;
        }),
        [],
      );
    });
  });
});
