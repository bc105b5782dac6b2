import type { SealedToken } from './common.ts';
import type { ContractEvent, EventType } from './wire.ts';

const alice = '0b6f4c1e-8d1a-4b9e-9a57-3f2d1c0e5a11';
const bob = '7c2e9d40-1f3b-4a6c-8e5d-2b9a0c4f6e22';
const sealed: SealedToken = {
  alg: 'A256GCM',
  kid: 'k2026',
  iv: 'q1w2e3r4t5y6u7i8',
  ciphertext: 'Zm9yIGV4YW1wbGUgb25seSwgbm90IGEgcmVhbCB0b2tlbg',
  tag: 'AbCdEfGhIjKlMnOpQrStUv',
};
const at = (n: number) => `2026-11-25T10:${String(n).padStart(2, '0')}:00.000Z`;
const meta = (id: string, userId: string, position: number) => ({
  id,
  userId,
  position,
  time: at(position),
  schemaVersion: 1 as const,
});

/** One valid example of every event; the AsyncAPI document and the tests use them. */
export const examples: { [K in EventType]: Extract<ContractEvent, { type: K }> } = {
  UserCreated: {
    ...meta('5d0f7a3c-1b2e-4c8d-9e0f-a1b2c3d4e501', alice, 1),
    type: 'UserCreated',
    data: {
      username: 'alice',
      displayName: 'Alice Liddell',
      email: 'alice@example.com',
      emailVerified: false,
      origin: 'builtin-signup',
      authProvider: { type: 'builtin' },
      siteAdmin: true,
    },
  },
  EmailVerificationRequested: {
    ...meta('5d0f7a3c-1b2e-4c8d-9e0f-a1b2c3d4e502', alice, 2),
    type: 'EmailVerificationRequested',
    data: { email: 'alice@example.com', token: sealed, expiresAt: '2026-11-26T10:02:00.000Z' },
  },
  EmailVerified: {
    ...meta('5d0f7a3c-1b2e-4c8d-9e0f-a1b2c3d4e503', alice, 3),
    type: 'EmailVerified',
    data: { email: 'alice@example.com', method: 'verification-link' },
  },
  EmailAdded: {
    ...meta('5d0f7a3c-1b2e-4c8d-9e0f-a1b2c3d4e504', alice, 4),
    type: 'EmailAdded',
    data: { email: 'alice@work.example.com' },
  },
  PrimaryEmailChanged: {
    ...meta('5d0f7a3c-1b2e-4c8d-9e0f-a1b2c3d4e505', alice, 5),
    type: 'PrimaryEmailChanged',
    data: { email: 'alice@work.example.com', previousEmail: 'alice@example.com' },
  },
  EmailUnverified: {
    ...meta('5d0f7a3c-1b2e-4c8d-9e0f-a1b2c3d4e506', alice, 6),
    type: 'EmailUnverified',
    data: { email: 'alice@work.example.com', by: bob },
  },
  EmailRemoved: {
    ...meta('5d0f7a3c-1b2e-4c8d-9e0f-a1b2c3d4e507', alice, 7),
    type: 'EmailRemoved',
    data: { email: 'alice@example.com' },
  },
  PasswordSetLinkRequested: {
    ...meta('5d0f7a3c-1b2e-4c8d-9e0f-a1b2c3d4e508', bob, 2),
    type: 'PasswordSetLinkRequested',
    data: { email: 'bob@example.com', token: sealed, expiresAt: '2026-11-27T10:02:00.000Z' },
  },
  PasswordResetRequested: {
    ...meta('5d0f7a3c-1b2e-4c8d-9e0f-a1b2c3d4e509', alice, 8),
    type: 'PasswordResetRequested',
    data: { email: 'alice@work.example.com', token: sealed, expiresAt: '2026-11-25T14:08:00.000Z' },
  },
  PasswordChanged: {
    ...meta('5d0f7a3c-1b2e-4c8d-9e0f-a1b2c3d4e510', alice, 9),
    type: 'PasswordChanged',
    data: { via: 'reset-link' },
  },
  ApiKeyCreated: {
    ...meta('5d0f7a3c-1b2e-4c8d-9e0f-a1b2c3d4e511', alice, 10),
    type: 'ApiKeyCreated',
    data: {
      keyId: '9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c61',
      name: 'CI pipeline',
      createdBy: alice,
      secretSha256: 'b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9',
    },
  },
  ApiKeyRevoked: {
    ...meta('5d0f7a3c-1b2e-4c8d-9e0f-a1b2c3d4e512', alice, 11),
    type: 'ApiKeyRevoked',
    data: { keyId: '9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c61', revokedBy: alice },
  },
  SiteAdminChanged: {
    ...meta('5d0f7a3c-1b2e-4c8d-9e0f-a1b2c3d4e513', bob, 3),
    type: 'SiteAdminChanged',
    data: { siteAdmin: true, changedBy: alice },
  },
  UserInvited: {
    ...meta('5d0f7a3c-1b2e-4c8d-9e0f-a1b2c3d4e514', alice, 12),
    type: 'UserInvited',
    data: {
      invitationId: '3e4f5a6b-7c8d-4e9f-a0b1-c2d3e4f5a6b7',
      email: 'carol@example.org',
      inviterUsername: 'alice',
      organization: 'acme',
      token: sealed,
      expiresAt: '2026-12-02T10:12:00.000Z',
    },
  },
  UserDeleted: {
    ...meta('5d0f7a3c-1b2e-4c8d-9e0f-a1b2c3d4e516', bob, 4),
    type: 'UserDeleted',
    data: { deletedBy: 'site-admin' },
  },
  CodeMonitorTriggered: {
    ...meta('5d0f7a3c-1b2e-4c8d-9e0f-a1b2c3d4e515', alice, 1),
    type: 'CodeMonitorTriggered',
    data: {
      monitorId: '6f7a8b9c-0d1e-4f2a-8b3c-4d5e6f7a8b9c',
      monitorName: 'New uses of <eval>',
      query: 'eval( lang:javascript',
      resultCount: 3,
      resultsPath: '/code-monitoring/6f7a8b9c-0d1e-4f2a-8b3c-4d5e6f7a8b9c/results',
    },
  },
  EmailAddressUndeliverable: {
    id: '5d0f7a3c-1b2e-4c8d-9e0f-a1b2c3d4e517',
    type: 'EmailAddressUndeliverable',
    address: 'carol@example.org',
    position: 41,
    time: '2026-11-25T11:00:00.000Z',
    schemaVersion: 1,
    data: {
      cause: 'smtp-reply',
      reply: {
        code: 550,
        enhancedStatus: '5.1.1',
        text: '550 5.1.1 The email account that you tried to reach does not exist.',
      },
      deliveryId: '8a9b0c1d-2e3f-4a5b-8c6d-7e8f9a0b1c2d',
    },
  },
  EmailAddressDeliverable: {
    id: '5d0f7a3c-1b2e-4c8d-9e0f-a1b2c3d4e518',
    type: 'EmailAddressDeliverable',
    address: 'carol@example.org',
    position: 42,
    time: '2026-11-25T12:00:00.000Z',
    schemaVersion: 1,
    data: { cause: 'admin-lifted', deliveryId: null },
  },
};
