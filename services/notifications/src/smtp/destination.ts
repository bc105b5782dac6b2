import { lookup as dnsLookup } from 'node:dns';
import { BlockList, isIP, connect as netConnect, type Socket } from 'node:net';

/**
 * Where the mailer may open a connection. The SMTP host is typed by a site admin (saved, or
 * unsaved in `POST /test-email`), so without a rule the service would connect for them to any
 * address its network reaches, including the cloud metadata endpoint that hands out the
 * machine's credentials. Link-local and metadata addresses are refused always; private and
 * loopback ranges only when the site config sets `email.smtp.denyPrivateNetworks` (internal
 * relays are normal). The name is resolved here, every address it resolves to is checked, and the
 * socket is opened to a checked address, so a DNS answer that changes between the check and the
 * connection (rebinding) cannot switch the destination.
 */

export interface DestinationRule {
  denyPrivateNetworks: boolean;
}

const metadata = new BlockList();
// IPv4 link-local, where AWS, GCP, Azure and Oracle serve instance metadata (169.254.169.254)
metadata.addSubnet('169.254.0.0', 16, 'ipv4');
metadata.addSubnet('fe80::', 10, 'ipv6');
// AWS's IPv6 instance metadata endpoint, and Alibaba Cloud's metadata address
metadata.addAddress('fd00:ec2::254', 'ipv6');
metadata.addAddress('100.100.100.200', 'ipv4');

const privateRanges = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8], // "this host": connecting to 0.0.0.0 reaches the local machine
  ['10.0.0.0', 8],
  ['100.64.0.0', 10], // carrier-grade NAT, also used inside cloud VPCs
  ['127.0.0.0', 8],
  ['172.16.0.0', 12],
  ['192.168.0.0', 16],
] as const) {
  privateRanges.addSubnet(net, prefix, 'ipv4');
}
privateRanges.addAddress('::', 'ipv6');
privateRanges.addAddress('::1', 'ipv6');
privateRanges.addSubnet('fc00::', 7, 'ipv6');

/** Why the mailer must not connect to this IP address, or undefined when it may. */
export function refusedAddress(address: string, rule: DestinationRule): string | undefined {
  // a zone index (fe80::1%eth0) only exists for link-local addresses
  if (address.includes('%')) return 'a link-local address';
  const family = isIP(address);
  if (family === 0) return 'not an IP address';
  const type = family === 6 ? 'ipv6' : 'ipv4';
  // BlockList matches an IPv4-mapped IPv6 address (::ffff:169.254.169.254) against IPv4 rules too
  if (metadata.check(address, type)) return 'a link-local or cloud metadata address';
  if (rule.denyPrivateNetworks && privateRanges.check(address, type)) {
    return 'a private or loopback address, and email.smtp.denyPrivateNetworks is true';
  }
  return undefined;
}

/** A connection refused by the destination rule; shaped as the mailer's own guards (permanent, step connect). */
export class DestinationRefused extends Error {
  readonly guard = { step: 'connect' as const, permanent: true };
  constructor(host: string, address: string, reason: string) {
    const resolved = host === address ? '' : ` (resolves to ${address})`;
    super(`refusing to connect to ${host}${resolved}: ${reason}`);
    this.name = 'DestinationRefused';
  }
}

export type Lookup = (host: string) => Promise<string[]>;

const systemLookup: Lookup = (host) =>
  new Promise((resolve, reject) => {
    dnsLookup(host, { all: true, verbatim: true }, (err, addresses) => {
      if (err) reject(err);
      else resolve(addresses.map((a) => a.address));
    });
  });

const timeoutError = (host: string, port: number, ms: number) =>
  Object.assign(new Error(`connection to ${host}:${port} timed out after ${ms} ms`), {
    code: 'ETIMEDOUT',
    timeoutType: 'CONNECT_TIMEOUT',
  });

/**
 * Every address of `host`, checked; throws `DestinationRefused` when any of them is refused (a
 * name that resolves to a metadata address among others is not a mail server worth trying).
 */
export async function checkedAddresses(
  host: string,
  rule: DestinationRule,
  lookup: Lookup = systemLookup,
): Promise<string[]> {
  const bare = host.replace(/^\[|\]$/g, '');
  const addresses = isIP(bare) ? [bare] : await lookup(bare);
  if (addresses.length === 0) {
    throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${bare}`), { code: 'ENOTFOUND' });
  }
  for (const address of addresses) {
    const reason = refusedAddress(address, rule);
    if (reason) throw new DestinationRefused(bare, address, reason);
  }
  return addresses;
}

/**
 * A TCP connection to `host:port` through the destination rule, within `timeoutMs` (lookup
 * included). Tries the checked addresses in the resolver's order; the last failure is thrown.
 */
export async function connectChecked(
  host: string,
  port: number,
  rule: DestinationRule,
  timeoutMs: number,
  lookup: Lookup = systemLookup,
): Promise<Socket> {
  const deadline = Date.now() + timeoutMs;
  let timer: NodeJS.Timeout | undefined;
  const lookedUp = await Promise.race([
    checkedAddresses(host, rule, lookup),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(timeoutError(host, port, timeoutMs)), timeoutMs);
    }),
  ]).finally(() => clearTimeout(timer));
  let last: unknown;
  for (const address of lookedUp) {
    const remaining = deadline - Date.now();
    if (remaining <= 0) break;
    try {
      return await openSocket(address, port, remaining, host, timeoutMs);
    } catch (err) {
      last = err;
    }
  }
  throw last ?? timeoutError(host, port, timeoutMs);
}

function openSocket(address: string, port: number, ms: number, host: string, total: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = netConnect({ host: address, port });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(timeoutError(host, port, total));
    }, ms);
    socket.once('connect', () => {
      clearTimeout(timer);
      // nodemailer attaches its own handler when it takes the socket; until then an error
      // must not be unhandled (it surfaces to nodemailer as the close that follows)
      socket.removeAllListeners('error');
      socket.on('error', () => {});
      resolve(socket);
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    });
  });
}
