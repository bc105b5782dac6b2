import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateLinkTokenKey, type LinkTokenKey, parseLinkTokenKey } from '@sitemail/contracts';

/**
 * The key both services seal and open link tokens with. `LINK_TOKEN_KEY` when set. With Kafka the
 * other service runs elsewhere and must open the same tokens, so a key is required; in embedded
 * mode one is generated once into `<dataDir>/link-token.key` and kept, so links in emails already
 * sent keep working across restarts.
 */
export function loadLinkTokenKey(opts: {
  value: string | undefined;
  withKafka: boolean;
  dataDir: string;
}): LinkTokenKey {
  if (opts.value) return parseLinkTokenKey(opts.value);
  if (opts.withKafka) {
    throw new Error(
      'LINK_TOKEN_KEY is required with KAFKA_BROKERS (both services need the same "<key id>:<base64 of 32 bytes>")',
    );
  }
  mkdirSync(opts.dataDir, { recursive: true });
  const file = join(opts.dataDir, 'link-token.key');
  if (!existsSync(file)) writeFileSync(file, `${generateLinkTokenKey()}\n`, { mode: 0o600 });
  return parseLinkTokenKey(readFileSync(file, 'utf8').trim());
}
