/** The site configuration, with the key names of the product's admin docs (see DESIGN.md). */
export interface SmtpConfig {
  authentication: 'PLAIN' | 'CRAM-MD5' | 'none';
  username?: string;
  password?: string;
  host: string;
  port: number;
  domain?: string;
  noVerifyTLS: boolean;
}

export interface AuthProvider {
  type: string;
  [key: string]: unknown;
}

export interface SiteConfig {
  externalURL: string;
  'email.senderName'?: string;
  'email.address'?: string;
  'email.smtp'?: SmtpConfig;
  'auth.providers': AuthProvider[];
}
