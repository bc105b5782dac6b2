import type { SiteConfig } from '@sitemail/site-config';

/** A rendered email ready for SMTP. From is built from the site config at send time. */
export interface OutgoingEmail {
  to: string;
  subject: string;
  text: string;
  html: string;
  /** Extra headers (e.g. X-Sitemail-Delivery); never secrets. */
  headers?: Record<string, string>;
  /** Set to make retries of one delivery carry the same Message-ID. */
  messageId?: string;
  /**
   * The delivery id, asked back in bounces: sent as the DSN envelope id (RFC 3461 ENVID, with
   * RET=HDRS and NOTIFY=FAILURE,DELAY) when the relay offers DSN, so a later bounce names the
   * delivery even if a relay rewrote the Message-ID (POST /bounces).
   */
  envelopeId?: string;
}

export interface SentEmail {
  messageId: string;
  /** The server's final reply, e.g. "250 2.0.0 OK queued as ABC". */
  response: string;
}

/** The SMTP conversation step that failed. */
export type SmtpStep = 'config' | 'connect' | 'tls' | 'ehlo' | 'auth' | 'envelope' | 'data';

/**
 * Why a send failed. `message` reads `mail: <what the server or connection said>` and never
 * contains a password, username+password pair or link token. `permanent` is true for 5xx replies
 * and for config errors (retrying cannot help); false for 4xx replies and connection failures.
 */
export class SmtpSendError extends Error {
  constructor(
    message: string,
    readonly step: SmtpStep,
    readonly permanent: boolean,
    readonly responseCode?: number,
    /** The server's reply, one line, secrets removed, when the failure was a reply. */
    readonly smtpResponse?: string,
  ) {
    super(message);
    this.name = 'SmtpSendError';
  }
}

export interface Mailer {
  /** Sends with the site config in force now (pooled connections, rebuilt when the config changes). */
  send(email: OutgoingEmail): Promise<SentEmail>;
  /**
   * Connects, greets and logs in with the site config in force, and quits without sending: the
   * delivery queue's probe while paused. Rejects with an SmtpSendError as `send` does.
   */
  verify?(): Promise<void>;
  close(): Promise<void>;
}

export type MailerFactory = (config: () => SiteConfig) => Mailer;
