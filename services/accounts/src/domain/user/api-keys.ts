import type { CreateApiKey, RevokeApiKey } from './commands.ts';
import type { Decision } from './decision.ts';
import { refuse } from './refusals.ts';
import type { ActiveUser } from './types.ts';

export function createApiKey(command: CreateApiKey, user: ActiveUser): Decision {
  if (user.apiKeys.some((k) => k.name === command.name)) {
    return refuse('api-key-name-taken', `the user already has an API key named "${command.name}"`, 'name');
  }
  return [
    {
      type: 'ApiKeyCreated',
      data: {
        keyId: command.keyId,
        name: command.name,
        createdBy: command.by,
        secretSha256: command.secretSha256,
      },
    },
  ];
}

export function revokeApiKey(command: RevokeApiKey, user: ActiveUser): Decision {
  if (!user.apiKeys.some((k) => k.keyId === command.keyId)) {
    return refuse('api-key-not-found', 'no such API key (unknown or already revoked)', 'keyId');
  }
  return [{ type: 'ApiKeyRevoked', data: { keyId: command.keyId, revokedBy: command.by } }];
}
