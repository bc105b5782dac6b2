export {
  connectionPlan,
  credentialsNeedTls,
  DEFAULT_SMTP_TIMEOUTS,
  ehloName,
  implicitTls,
  isLoopbackHost,
  type SmtpTimeouts,
  smtpConfigKey,
} from './connection-rules.ts';
export {
  configError,
  NO_FROM_ADDRESS,
  NO_SMTP_CONFIGURED,
  scrubSecrets,
  stepOf,
  toSmtpSendError,
} from './errors.ts';
export { createMailer, type MailerLogger, type MailerOptions } from './mailer.ts';
export { guardedAuthHandlers } from './sasl.ts';
export * from './types.ts';
