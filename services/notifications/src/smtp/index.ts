export { guardedAuthHandlers } from './auth.ts';
export {
  configError,
  NO_FROM_ADDRESS,
  NO_SMTP_CONFIGURED,
  scrubSecrets,
  stepOf,
  toSmtpSendError,
} from './errors.ts';
export { createMailer, type MailerLogger, type MailerOptions } from './mailer.ts';
export {
  connectionPlan,
  credentialsNeedTls,
  DEFAULT_SMTP_TIMEOUTS,
  ehloName,
  implicitTls,
  isLoopbackHost,
  type SmtpTimeouts,
  smtpConfigKey,
} from './policy.ts';
export * from './types.ts';
