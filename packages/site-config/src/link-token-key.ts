import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateLinkTokenKey, type LinkTokenKey, parseLinkTokenKey } from '@sitemail/contracts';

/**
 * The key committed in .env.example. It is public, so anyone could open the link tokens sealed
 * with it (verification and reset links travelling on the bus): refused whatever key id it has.
 */
const EXAMPLE_KEY = parseLinkTokenKey('k1:yR0m9fS2qQ8C3u4tX6bV1nJk7aE5dW0pL2hG9sZ8cM4=').key;

function refuseExampleKey(key: LinkTokenKey): LinkTokenKey {
  if (key.key.equals(EXAMPLE_KEY)) {
    throw new Error(
      'LINK_TOKEN_KEY is the example value from .env.example: generate your own with `npm run link-token-key` ' +
        '(or any 32 random bytes in base64, see .env.example) and give both services the same one',
    );
  }
  return key;
}

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
  if (opts.value) return refuseExampleKey(parseLinkTokenKey(opts.value));
  if (opts.withKafka) {
    throw new Error(
      'LINK_TOKEN_KEY is required with KAFKA_BROKERS (both services need the same "<key id>:<base64 of 32 bytes>")',
    );
  }
  mkdirSync(opts.dataDir, { recursive: true });
  const file = join(opts.dataDir, 'link-token.key');
  if (!existsSync(file)) writeFileSync(file, `${generateLinkTokenKey()}\n`, { mode: 0o600 });
  return refuseExampleKey(parseLinkTokenKey(readFileSync(file, 'utf8').trim()));
}
