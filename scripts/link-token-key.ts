/**
 * `npm run link-token-key`: prints a fresh LINK_TOKEN_KEY ("<key id>:<base64 of 32 random bytes>")
 * for .env or a secret store; give both services the same one.
 */
import { generateLinkTokenKey } from '@sitemail/contracts';

console.log(generateLinkTokenKey());
