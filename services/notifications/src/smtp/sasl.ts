import { createHmac } from 'node:crypto';
import type { SMTPConnectionCustomAuthContext } from 'nodemailer/lib/smtp-connection';
import type { TransportErrorLike } from './errors.ts';
import { type TokenSource, xoauth2String } from './oauth2.ts';

/**
 * PLAIN, LOGIN, CRAM-MD5 and XOAUTH2 as nodemailer custom auth handlers, used instead of its built-in ones for one
 * reason: nodemailer skips authentication silently when the server does not advertise AUTH
 * (`allowsAuth` false) and sends the configured mechanism even when the server lists others. Both
 * would deliver mail unauthenticated or fail obscurely. The mailer sets `forceAuth` so these
 * handlers always run, and they refuse before sending any credential unless the server offers the
 * configured mechanism.
 */

type Mechanism = 'PLAIN' | 'LOGIN' | 'CRAM-MD5' | 'XOAUTH2';

function guardError(message: string): Error & TransportErrorLike {
  // permanent: the server's capabilities and the site config disagree, retrying cannot help
  return Object.assign(new Error(message), { guard: { step: 'auth' as const, permanent: true } });
}

function replyError(response: string): Error & TransportErrorLike {
  return Object.assign(new Error('authentication failed'), { response });
}

function ensureOffered(mechanism: Mechanism, ctx: SMTPConnectionCustomAuthContext): void {
  const offered = ctx.authMethods.map((m) => m.toUpperCase());
  if (offered.includes(mechanism)) return;
  throw guardError(
    offered.length === 0
      ? `the server does not offer authentication, but email.smtp.authentication is "${mechanism}" (refusing to send unauthenticated)`
      : `the server does not offer AUTH ${mechanism} (it offers ${offered.join(', ')}); check email.smtp.authentication`,
  );
}

async function plain(ctx: SMTPConnectionCustomAuthContext): Promise<void> {
  ensureOffered('PLAIN', ctx);
  const { user = '', pass = '' } = ctx.auth.credentials ?? {};
  // empty authorization identity, like nodemailer's own PLAIN (some servers reject one)
  const token = Buffer.from(`\0${user}\0${pass}`, 'utf8').toString('base64');
  const reply = await ctx.sendCommand(`AUTH PLAIN ${token}`);
  if (reply.status !== 235) throw replyError(reply.response);
}

async function cramMd5(ctx: SMTPConnectionCustomAuthContext): Promise<void> {
  ensureOffered('CRAM-MD5', ctx);
  const { user = '', pass = '' } = ctx.auth.credentials ?? {};
  const challenge = await ctx.sendCommand('AUTH CRAM-MD5');
  if (challenge.status !== 334) throw replyError(challenge.response);
  const decoded = Buffer.from((challenge.text ?? '').trim(), 'base64').toString('utf8');
  const digest = createHmac('md5', pass).update(decoded).digest('hex');
  const reply = await ctx.sendCommand(Buffer.from(`${user} ${digest}`, 'utf8').toString('base64'));
  if (reply.status !== 235) throw replyError(reply.response);
}

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');

async function login(ctx: SMTPConnectionCustomAuthContext): Promise<void> {
  ensureOffered('LOGIN', ctx);
  const { user = '', pass = '' } = ctx.auth.credentials ?? {};
  const askUser = await ctx.sendCommand('AUTH LOGIN');
  if (askUser.status !== 334) throw replyError(askUser.response);
  const askPass = await ctx.sendCommand(b64(user));
  if (askPass.status !== 334) throw replyError(askPass.response);
  const reply = await ctx.sendCommand(b64(pass));
  if (reply.status !== 235) throw replyError(reply.response);
}

/**
 * XOAUTH2 with the pool's token source. A refusal (535, or the 334 error challenge Google and
 * Microsoft send for a bad token, answered with an empty line) usually means the cached token
 * expired early or was revoked: one new token, one more try, on the same connection.
 */
export function xoauth2(tokens: TokenSource) {
  const attempt = async (ctx: SMTPConnectionCustomAuthContext, user: string, token: string) => {
    const reply = await ctx.sendCommand(`AUTH XOAUTH2 ${b64(xoauth2String(user, token))}`);
    if (reply.status !== 334) return reply;
    return ctx.sendCommand('');
  };
  return async (ctx: SMTPConnectionCustomAuthContext): Promise<void> => {
    ensureOffered('XOAUTH2', ctx);
    const user = ctx.auth.credentials?.user ?? '';
    const first = await tokens.get();
    const reply = await attempt(ctx, user, first);
    if (reply.status === 235) return;
    if (reply.status !== 535 && reply.status !== 334) throw replyError(reply.response);
    const again = await attempt(ctx, user, await tokens.refresh(first));
    if (again.status !== 235) throw replyError(again.response);
  };
}

export const guardedAuthHandlers = { PLAIN: plain, LOGIN: login, 'CRAM-MD5': cramMd5 };
