import type { TransportErrorLike } from './errors.ts';

/**
 * Follows each SMTP connection's commands (nodemailer's transaction log, which already masks AUTH
 * arguments) so that an error which nodemailer reports only as "Timeout" or "Connection closed"
 * can be placed at the step the client was waiting on. nodemailer logs the error on the failing
 * connection before it hands it to the send callback, which is where it gets annotated.
 */
export function conversationTracker() {
  const lastCommand = new Map<string, string>();
  const record = (
    entry: { tnx?: string; sid?: string; err?: TransportErrorLike } | undefined,
    message: unknown,
  ) => {
    const sid = entry?.sid;
    if (!sid) return;
    if (entry.tnx === 'client' && typeof message === 'string') {
      // a continuation of an AUTH exchange is not a command verb; keep it as AUTH
      const verb = message.split(' ')[0]?.toUpperCase() ?? '';
      lastCommand.set(sid, /^[A-Z]{4,8}$/.test(verb) ? verb : 'AUTH');
    } else if (entry.tnx === 'smtp' && entry.err && typeof entry.err === 'object') {
      entry.err.lastCommand ??= lastCommand.get(sid);
    } else if (entry.tnx === 'network' && message === 'Connection closed') {
      lastCommand.delete(sid);
    }
  };
  type Entry = Parameters<typeof record>[0];
  const log = (entry: unknown, message: unknown) => record(entry as Entry, message);
  return { trace: log, debug: log, info: log, warn: log, error: log, fatal: log };
}
