import { SignJWT, importPKCS8, type CryptoKey, type KeyObject } from 'jose';
import { LRUCache } from 'lru-cache';

/**
 * Mints the short-lived service tokens a registry presents to a hold.
 * `sub` is the DID the registry acts for, `aud` the hold's identity.
 */
export interface ServiceTokenSignerOptions {
  /** The registry's identity; the hold must list it as a trusted issuer. */
  issuer: string;
  /** PKCS#8 PEM of an Ed25519 or P-256 key, or an already imported key. */
  privateKey: string | CryptoKey | KeyObject;
  /** Seconds a token lives; at most 300. */
  ttlSeconds?: number;
  keyId?: string;
  /** The signing service (`svc`), when the issuer runs more than one kind (see `SERVICE_NAME`). */
  service?: string;
}

export const MAX_SERVICE_TOKEN_TTL_SECONDS = 300;

/**
 * A service name (the `svc` claim): which of an issuer's services signs.
 * The hold keeps one claim on a blob per issuer and service, so a registry
 * and a Verdaccio that sign as the same issuer never drop each other's.
 */
export const SERVICE_NAME = /^[a-z][a-z0-9-]{0,31}$/;

/**
 * Who holds a claim at a hold: the issuer, and its service when it names one
 * (after a NUL, which no issuer the hold trusts contains, so no issuer's
 * name is another's claimant).
 */
export function claimantOf(issuer: string, service: string | undefined): string {
  return service === undefined ? issuer : `${issuer}\u0000${service}`;
}

export class ServiceTokenSigner {
  readonly #issuer: string;
  readonly #ttlSeconds: number;
  readonly #keyId: string | undefined;
  readonly #service: string | undefined;
  readonly #key: Promise<{ key: CryptoKey | KeyObject; alg: string }>;
  readonly #now: () => number;
  /**
   * Tokens are reused for the first half of their life: a hold call need not
   * pay for a signature, and a token handed out still has half its life left.
   */
  readonly #reuse = new LRUCache<string, { token: Promise<string>; reuseUntil: number }>({ max: 10_000 });

  constructor(options: ServiceTokenSignerOptions & { now?: () => number }) {
    const ttl = options.ttlSeconds ?? 120;
    if (!Number.isInteger(ttl) || ttl < 1 || ttl > MAX_SERVICE_TOKEN_TTL_SECONDS) {
      throw new RangeError(`ttlSeconds must be an integer from 1 to ${MAX_SERVICE_TOKEN_TTL_SECONDS}, got ${ttl}`);
    }
    if (!options.issuer) throw new TypeError('issuer is required');
    if (options.service !== undefined && !SERVICE_NAME.test(options.service)) throw new TypeError(`service must match ${SERVICE_NAME}, got ${JSON.stringify(options.service)}`);
    this.#service = options.service;
    this.#issuer = options.issuer;
    this.#ttlSeconds = ttl;
    this.#keyId = options.keyId;
    this.#now = options.now ?? Date.now;
    this.#key = importSigningKey(options.privateKey);
    this.#key.catch(() => {});
  }

  get issuer(): string {
    return this.#issuer;
  }

  sign(subject: string, audience: string): Promise<string> {
    const cacheKey = `${subject}\n${audience}`;
    const nowMs = this.#now();
    const reused = this.#reuse.get(cacheKey);
    if (reused && nowMs < reused.reuseUntil) return reused.token;
    const token = this.#mint(subject, audience, Math.floor(nowMs / 1000));
    this.#reuse.set(cacheKey, { token, reuseUntil: nowMs + (this.#ttlSeconds * 1000) / 2 });
    token.catch(() => this.#reuse.delete(cacheKey));
    return token;
  }

  async #mint(subject: string, audience: string, now: number): Promise<string> {
    const { key, alg } = await this.#key;
    return new SignJWT(this.#service === undefined ? {} : { svc: this.#service })
      .setProtectedHeader(this.#keyId ? { alg, kid: this.#keyId } : { alg })
      .setIssuer(this.#issuer)
      .setSubject(subject)
      .setAudience(audience)
      .setIssuedAt(now)
      .setExpirationTime(now + this.#ttlSeconds)
      .sign(key);
  }
}

async function importSigningKey(
  privateKey: ServiceTokenSignerOptions['privateKey'],
): Promise<{ key: CryptoKey | KeyObject; alg: string }> {
  if (typeof privateKey !== 'string') return { key: privateKey, alg: algorithmOf(privateKey) };
  for (const alg of ['EdDSA', 'ES256']) {
    try {
      return { key: await importPKCS8(privateKey, alg), alg };
    } catch {
      // try the next algorithm
    }
  }
  throw new TypeError('privateKey must be a PKCS#8 PEM Ed25519 or P-256 key');
}

function algorithmOf(key: CryptoKey | KeyObject): string {
  const type = 'asymmetricKeyType' in key ? key.asymmetricKeyType : (key as CryptoKey).algorithm.name;
  if (type === 'ed25519' || type === 'Ed25519') return 'EdDSA';
  if (type === 'ec' || type === 'ECDSA') return 'ES256';
  throw new TypeError(`unsupported signing key type ${String(type)}`);
}
