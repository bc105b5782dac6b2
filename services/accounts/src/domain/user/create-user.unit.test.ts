import { describe, it } from 'node:test';
import type { CreateUser } from './commands.ts';
import {
  alice,
  aliceSignedUp,
  given,
  now,
  sealed,
  singleSignOn,
  withoutSmtp,
  withSmtp,
} from './spec.test-support.ts';

const create = (overrides: Partial<CreateUser>): CreateUser => ({
  type: 'CreateUser',
  userId: alice,
  username: 'alice',
  email: 'alice@example.com',
  origin: 'builtin-signup',
  authProvider: { type: 'builtin' },
  withPassword: true,
  firstUser: true,
  site: withSmtp,
  seal: sealed,
  now,
  ...overrides,
});

const created = (overrides: Record<string, unknown>) => ({
  type: 'UserCreated' as const,
  data: {
    username: 'alice',
    email: 'alice@example.com',
    emailVerified: false,
    origin: 'builtin-signup' as const,
    authProvider: { type: 'builtin' },
    siteAdmin: true,
    ...overrides,
  },
});

describe('CreateUser', () => {
  it('builtin sign-up with SMTP configured: unverified, verification requested, first user is site admin', () => {
    given([])
      .when(create({}))
      .thenEmits([
        created({}),
        {
          type: 'EmailVerificationRequested',
          data: {
            email: 'alice@example.com',
            token: sealed('EmailVerificationRequested'),
            expiresAt: '2026-11-26T10:00:00.000Z',
          },
        },
      ]);
  });

  it('builtin sign-up without SMTP: verified, no link', () => {
    given([])
      .when(create({ site: withoutSmtp }))
      .thenEmits([created({ emailVerified: true })]);
  });

  it('a later user is not site admin, and keeps its display name', () => {
    given([])
      .when(create({ firstUser: false, site: withoutSmtp, displayName: 'Alice L.' }))
      .thenEmits([created({ emailVerified: true, siteAdmin: false, displayName: 'Alice L.' })]);
  });

  it('builtin sign-up proven by an invitation link mailed to the address itself: verified even with SMTP', () => {
    given([])
      .when(create({ invitation: { email: 'alice@example.com', mailedToInvitedAddress: true } }))
      .thenEmits([created({ emailVerified: true })]);
  });

  const verificationRequested = {
    type: 'EmailVerificationRequested' as const,
    data: {
      email: 'alice@example.com',
      token: sealed('EmailVerificationRequested'),
      expiresAt: '2026-11-26T10:00:00.000Z',
    },
  };

  it("an invitation mailed to an existing user's primary proves nothing of the invited address: unverified, a verification link", () => {
    given([])
      .when(create({ invitation: { email: 'alice@example.com', mailedToInvitedAddress: false } }))
      .thenEmits([created({}), verificationRequested]);
  });

  it('an invitation for another address proves nothing of this one: unverified, a verification link', () => {
    given([])
      .when(create({ invitation: { email: 'someone@example.com', mailedToInvitedAddress: true } }))
      .thenEmits([created({}), verificationRequested]);
  });

  it('admin-created with SMTP: unverified and a set-password link', () => {
    given([])
      .when(create({ origin: 'site-admin', withPassword: false, firstUser: false }))
      .thenEmits([
        created({ origin: 'site-admin', siteAdmin: false }),
        {
          type: 'PasswordSetLinkRequested',
          data: {
            email: 'alice@example.com',
            token: sealed('PasswordSetLinkRequested'),
            expiresAt: '2026-11-28T10:00:00.000Z',
          },
        },
      ]);
  });

  it('admin-created on a single-sign-on site with SMTP: a verification link, never a set-password link', () => {
    given([])
      .when(create({ origin: 'site-admin', withPassword: false, firstUser: false, site: singleSignOn }))
      .thenEmits([
        created({ origin: 'site-admin', siteAdmin: false }),
        {
          type: 'EmailVerificationRequested',
          data: {
            email: 'alice@example.com',
            token: sealed('EmailVerificationRequested'),
            expiresAt: '2026-11-26T10:00:00.000Z',
          },
        },
      ]);
  });

  it('admin-created without SMTP: verified, no link', () => {
    given([])
      .when(create({ origin: 'site-admin', withPassword: false, firstUser: false, site: withoutSmtp }))
      .thenEmits([created({ origin: 'site-admin', siteAdmin: false, emailVerified: true })]);
  });

  it('external provider: verified, with its provider and external id', () => {
    given([])
      .when(
        create({
          origin: 'external-provider',
          authProvider: { type: 'github', externalId: '4242' },
          withPassword: false,
          firstUser: false,
        }),
      )
      .thenEmits([
        created({
          origin: 'external-provider',
          authProvider: { type: 'github', externalId: '4242' },
          emailVerified: true,
          siteAdmin: false,
        }),
      ]);
  });

  it('API-created: assumed verified even with SMTP', () => {
    given([])
      .when(create({ origin: 'api', withPassword: false, firstUser: false }))
      .thenEmits([created({ origin: 'api', emailVerified: true, siteAdmin: false })]);
  });

  it('refuses a user that already exists', () => {
    given([aliceSignedUp(true)])
      .when(create({}))
      .thenRefused('user-exists', 'userId');
  });

  it('refuses builtin sign-up when auth.providers has no builtin entry', () => {
    given([])
      .when(create({ site: singleSignOn }))
      .thenRefused('builtin-auth-disabled');
  });
});
