import { describe, it } from 'node:test';
import { alice, aliceSignedUp, bob, given, now } from './spec.test-support.ts';

const keyId = '9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c61';
const otherKeyId = '1a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c62';
const sha = 'b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9';
const keyCreated = (id = keyId, name = 'CI') => ({
  type: 'ApiKeyCreated' as const,
  data: { keyId: id, name, createdBy: alice, secretSha256: sha },
});

describe('CreateApiKey', () => {
  const cmd = (name: string, id = keyId) => ({
    type: 'CreateApiKey' as const,
    keyId: id,
    name,
    secretSha256: sha,
    by: alice,
    now,
  });
  it('creates a key carrying its id, name, creator and secret hash', () => {
    given([aliceSignedUp(true)])
      .when(cmd('CI'))
      .thenEmits([keyCreated()]);
  });
  it('refuses a second active key with the same name', () => {
    given([aliceSignedUp(true), keyCreated()])
      .when(cmd('CI', otherKeyId))
      .thenRefused('api-key-name-taken', 'name');
  });
  it('allows the name again once that key is revoked', () => {
    given([aliceSignedUp(true), keyCreated(), { type: 'ApiKeyRevoked', data: { keyId, revokedBy: alice } }])
      .when(cmd('CI', otherKeyId))
      .thenEmits([keyCreated(otherKeyId)]);
  });
  it('refuses an unknown user', () => {
    given([]).when(cmd('CI')).thenRefused('user-not-found');
  });
});

describe('RevokeApiKey', () => {
  const cmd = (id = keyId) => ({ type: 'RevokeApiKey' as const, keyId: id, by: bob, now });
  it('revokes an active key, naming who did', () => {
    given([aliceSignedUp(true), keyCreated()])
      .when(cmd())
      .thenEmits([{ type: 'ApiKeyRevoked', data: { keyId, revokedBy: bob } }]);
  });
  it('refuses an unknown key', () => {
    given([aliceSignedUp(true), keyCreated()])
      .when(cmd(otherKeyId))
      .thenRefused('api-key-not-found', 'keyId');
  });
  it('refuses a key revoked already', () => {
    given([aliceSignedUp(true), keyCreated(), { type: 'ApiKeyRevoked', data: { keyId, revokedBy: alice } }])
      .when(cmd())
      .thenRefused('api-key-not-found', 'keyId');
  });
  it('refuses an unknown user', () => {
    given([]).when(cmd()).thenRefused('user-not-found');
  });
});
