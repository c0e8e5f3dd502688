import { SignJWT, importPKCS8, type CryptoKey, type KeyObject } from 'jose';

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
}

export const MAX_SERVICE_TOKEN_TTL_SECONDS = 300;

export class ServiceTokenSigner {
  readonly #issuer: string;
  readonly #ttlSeconds: number;
  readonly #keyId: string | undefined;
  readonly #key: Promise<{ key: CryptoKey | KeyObject; alg: string }>;

  constructor(options: ServiceTokenSignerOptions) {
    const ttl = options.ttlSeconds ?? 120;
    if (!Number.isInteger(ttl) || ttl < 1 || ttl > MAX_SERVICE_TOKEN_TTL_SECONDS) {
      throw new RangeError(`ttlSeconds must be an integer from 1 to ${MAX_SERVICE_TOKEN_TTL_SECONDS}, got ${ttl}`);
    }
    if (!options.issuer) throw new TypeError('issuer is required');
    this.#issuer = options.issuer;
    this.#ttlSeconds = ttl;
    this.#keyId = options.keyId;
    this.#key = importSigningKey(options.privateKey);
    this.#key.catch(() => {});
  }

  get issuer(): string {
    return this.#issuer;
  }

  async sign(subject: string, audience: string): Promise<string> {
    const { key, alg } = await this.#key;
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({})
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
