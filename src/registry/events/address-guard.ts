import { lookup as dnsLookup } from 'node:dns/promises';
import { isIP } from 'node:net';

/** Refused: the address is in a range webhooks may not reach unless the operator allows it. */
export class ForbiddenAddressError extends Error {
  override readonly name = 'ForbiddenAddressError';
  readonly code = 'EADDRNOTALLOWED';
  readonly host: string;
  readonly address: string;
  readonly reason: string;

  constructor(host: string, address: string, reason: string) {
    super(
      address
        ? `webhook host ${host} resolves to ${address} (${reason}); allow it with events.allowedNetworks`
        : `webhook host ${host} resolves to no address (${reason})`,
    );
    this.host = host;
    this.address = address;
    this.reason = reason;
  }
}

export type Resolver = (hostname: string) => Promise<{ address: string; family: number }[]>;

type LookupCallback = (...args: any[]) => void; // eslint-disable-line @typescript-eslint/no-explicit-any

interface Network {
  family: 4 | 6;
  bytes: number[];
  prefix: number;
}

interface Range extends Network {
  reason: string;
}

/** The 4 or 16 bytes of an IP address, or undefined when `text` is not one. A zone (`%eth0`) is ignored. */
function parseAddress(text: string): { family: 4 | 6; bytes: number[] } | undefined {
  const address = text.replace(/%.*$/, '');
  const family = isIP(address);
  if (family === 4) return { family, bytes: address.split('.').map(Number) };
  if (family !== 6) return undefined;
  let hex = address;
  const lastColon = hex.lastIndexOf(':');
  if (hex.includes('.', lastColon)) {
    const [a = 0, b = 0, c = 0, d = 0] = hex.slice(lastColon + 1).split('.').map(Number);
    hex = `${hex.slice(0, lastColon + 1)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', tail] = hex.split('::');
  const groups = (part: string | undefined) => (part ? part.split(':').map((group) => parseInt(group, 16)) : []);
  const left = groups(head);
  const right = groups(tail);
  const words = tail === undefined ? left : [...left, ...Array<number>(8 - left.length - right.length).fill(0), ...right];
  return { family, bytes: words.flatMap((word) => [word >> 8, word & 0xff]) };
}

function parseNetwork(entry: string): Network | undefined {
  const [address = '', prefixText, ...rest] = entry.trim().split('/');
  const parsed = parseAddress(address);
  if (!parsed || address.includes('%') || rest.length > 0) return undefined;
  const max = parsed.bytes.length * 8;
  if (prefixText === undefined) return { ...parsed, prefix: max };
  if (!/^\d{1,3}$/.test(prefixText) || Number(prefixText) > max) return undefined;
  return { ...parsed, prefix: Number(prefixText) };
}

function contains(network: Network, family: 4 | 6, bytes: number[]): boolean {
  if (network.family !== family) return false;
  for (let bit = 0; bit < network.prefix; bit += 8) {
    const i = bit / 8;
    const mask = (0xff << (8 - Math.min(8, network.prefix - bit))) & 0xff;
    if (((bytes[i] ?? 0) & mask) !== ((network.bytes[i] ?? 0) & mask)) return false;
  }
  return true;
}

function ranges(table: [string, string][]): Range[] {
  return table.map(([cidr, reason]) => ({ ...(parseNetwork(cidr) as Network), reason }));
}

// Most specific first: the first range containing an address gives its reason.
const V4_RANGES = ranges([
  ['169.254.169.254/32', 'cloud metadata'],
  ['169.254.170.2/32', 'cloud metadata'],
  ['255.255.255.255/32', 'broadcast'],
  ['0.0.0.0/8', 'unspecified ("this network")'],
  ['10.0.0.0/8', 'private'],
  ['172.16.0.0/12', 'private'],
  ['192.168.0.0/16', 'private'],
  ['127.0.0.0/8', 'loopback'],
  ['169.254.0.0/16', 'link-local'],
  ['100.64.0.0/10', 'shared address space (CGNAT)'],
  ['192.0.0.0/24', 'IETF protocol assignments'],
  ['192.0.2.0/24', 'documentation'],
  ['198.51.100.0/24', 'documentation'],
  ['203.0.113.0/24', 'documentation'],
  ['198.18.0.0/15', 'benchmarking'],
  ['224.0.0.0/4', 'multicast'],
  ['240.0.0.0/4', 'reserved'],
]);

const V6_RANGES = ranges([
  ['::/128', 'unspecified'],
  ['::1/128', 'loopback'],
  ['fd00:ec2::254/128', 'cloud metadata'],
  ['fe80::/10', 'link-local'],
  ['fc00::/7', 'unique-local (private)'],
  ['ff00::/8', 'multicast'],
  ['2001:db8::/32', 'documentation'],
  ['100::/64', 'discard-only'],
  ['fec0::/10', 'site-local (deprecated, private)'],
  ['64:ff9b:1::/48', 'local-use NAT64'],
  ['2001::/32', 'Teredo (its IPv4 is obfuscated)'],
  ['::ffff:0:0:0/96', 'IPv4-translated'],
]);

// IPv6 forms that carry an IPv4 address, and the byte offset of that address.
const EMBEDDED_V4: { network: Network; offset: number; form: string }[] = [
  { network: parseNetwork('::ffff:0:0/96') as Network, offset: 12, form: 'IPv4-mapped' },
  { network: parseNetwork('::/96') as Network, offset: 12, form: 'IPv4-compatible' },
  { network: parseNetwork('64:ff9b::/96') as Network, offset: 12, form: 'NAT64' },
  { network: parseNetwork('2002::/16') as Network, offset: 2, form: '6to4' },
];

function embeddedV4(bytes: number[]): { bytes: number[]; form: string } | undefined {
  const match = EMBEDDED_V4.find(({ network }) => contains(network, 6, bytes));
  return match && { bytes: bytes.slice(match.offset, match.offset + 4), form: match.form };
}

function hostOf(url: URL): string {
  return url.hostname.replace(/^\[(.*)\]$/, '$1');
}

export class AddressPolicy {
  readonly #allowed: Network[];
  readonly #resolve: Resolver;

  /** `allowed`: CIDRs or single addresses (IPv4 or IPv6) the operator allows although they are in a forbidden range, e.g. '127.0.0.0/8', '10.1.2.3', 'fd00::/8'. Throws a plain Error naming the bad entry on invalid input. */
  constructor(allowed: readonly string[] = [], resolver?: Resolver) {
    this.#allowed = allowed.map((entry) => {
      const network = typeof entry === 'string' ? parseNetwork(entry) : undefined;
      if (!network) throw new Error(`events.allowedNetworks: ${JSON.stringify(entry)} is not an IP address or CIDR`);
      return network;
    });
    this.#resolve = resolver ?? ((hostname) => dnsLookup(hostname, { all: true, verbatim: true }));
  }

  /** The reason an address is refused, or undefined when it may be reached. */
  forbidden(address: string): string | undefined {
    const parsed = parseAddress(address);
    if (!parsed) return 'not an IP address';
    const v4 = parsed.family === 6 ? embeddedV4(parsed.bytes) : undefined;
    const isAllowed = (network: Network) =>
      contains(network, parsed.family, parsed.bytes) || (v4 !== undefined && contains(network, 4, v4.bytes));
    if (this.#allowed.some(isAllowed)) return undefined;
    const own = (parsed.family === 4 ? V4_RANGES : V6_RANGES).find((range) => contains(range, parsed.family, parsed.bytes));
    if (own) return own.reason;
    const inner = v4 && V4_RANGES.find((range) => contains(range, 4, v4.bytes));
    return inner && `${inner.reason}, ${v4.form} ${v4.bytes.join('.')}`;
  }

  /** Throws ForbiddenAddressError when the URL's host is an IP literal that is forbidden, or a name any of whose resolved addresses is forbidden (so a name resolving to both a public and a private address is refused). Also refuses a name that resolves to nothing. Handles bracketed IPv6 hosts in URLs. */
  async check(url: URL): Promise<void> {
    await this.#addresses(hostOf(url));
  }

  /**
   * Throws ForbiddenAddressError when the URL's host is a forbidden IP
   * literal. A name is left alone: `lookup` checks it at every connection,
   * but a socket never looks up an address written in the URL, so this runs
   * before each one.
   */
  async checkLiteral(url: URL): Promise<void> {
    const host = hostOf(url);
    if (isIP(host.replace(/%.*$/, '')) !== 0) await this.#addresses(host);
  }

  /** A `lookup` function for net.connect / tls.connect (and undici's Agent `connect: { lookup }` option), signature (hostname, options, callback) like dns.lookup, honouring options.all (Node's happy-eyeballs calls it with all: true) and options.family. It resolves with this policy's resolver, then calls back with ForbiddenAddressError if ANY resolved address is forbidden; otherwise passes the addresses through. This is what defeats DNS rebinding: the check runs on the very addresses the socket connects to. */
  readonly lookup = (hostname: string, options: object, callback: LookupCallback): void => {
    if (typeof options === 'function') [callback, options] = [options as LookupCallback, {}];
    const { all, family } = (typeof options === 'number' ? { family: options } : (options ?? {})) as { all?: boolean; family?: unknown };
    const wanted = family === 4 || family === 'IPv4' ? 4 : family === 6 || family === 'IPv6' ? 6 : 0;
    this.#addresses(hostname).then(
      (addresses) => {
        const usable = wanted ? addresses.filter((entry) => entry.family === wanted) : addresses;
        const [first] = usable;
        if (!first) {
          const error = Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND', hostname });
          callback(error);
        } else if (all) callback(null, usable);
        else callback(null, first.address, first.family);
      },
      (error: unknown) => callback(error),
    );
  };

  /** Every address `host` resolves to, all of them allowed; throws ForbiddenAddressError otherwise. */
  async #addresses(host: string): Promise<{ address: string; family: number }[]> {
    const literal = host.replace(/^\[(.*)\]$/, '$1');
    const family = isIP(literal.replace(/%.*$/, ''));
    // An IP literal is never handed to the resolver: an injected one might map it anywhere.
    const resolved = family ? [{ address: literal, family }] : host ? await this.#resolve(host) : [];
    if (resolved.length === 0) throw new ForbiddenAddressError(host, '', 'no addresses');
    const addresses = resolved.map(({ address }) => ({ address, family: isIP(address.replace(/%.*$/, '')) }));
    for (const { address } of addresses) {
      const reason = this.forbidden(address);
      if (reason) throw new ForbiddenAddressError(host, address, reason);
    }
    return addresses;
  }
}
