import { createLocalJWKSet, errors as joseErrors, importSPKI, jwtVerify, type CryptoKey, type JWK, type KeyObject } from 'jose';
import { HoldError } from '../errors.ts';

export interface TrustedIssuer {
  /** The registry's identity, matched against the token's `iss`. */
  issuer: string;
  /** SPKI PEM of an Ed25519 or P-256 public key, or a JWK. */
  publicKey: string | JWK;
}

export interface ServiceTokenVerifierOptions {
  /** The hold's identity, required in the token's `aud`. */
  audience: string;
  issuers: readonly TrustedIssuer[];
  /** Longest lifetime (`exp - iat`) accepted, in seconds. */
  maxLifetimeSeconds: number;
  clockToleranceSeconds?: number;
}

export interface VerifiedCaller {
  /** The DID the registry acts for (`sub`). */
  did: string;
  issuer: string;
}

type KeyResolver = (header: { alg?: string; kid?: string }) => Promise<CryptoKey | KeyObject | Uint8Array>;

/** Verifies the service tokens registries present; every failure is `UNAUTHORIZED`. */
export class ServiceTokenVerifier {
  readonly #options: ServiceTokenVerifierOptions;
  readonly #keys: Map<string, Promise<KeyResolver>>;

  constructor(options: ServiceTokenVerifierOptions) {
    if (options.issuers.length === 0) throw new TypeError('at least one trusted issuer is required');
    this.#options = options;
    this.#keys = new Map(options.issuers.map((trusted) => [trusted.issuer, resolverFor(trusted.publicKey)]));
    for (const resolver of this.#keys.values()) resolver.catch(() => {});
  }

  async verify(authorization: string | undefined): Promise<VerifiedCaller> {
    const token = /^Bearer ([A-Za-z0-9_\-.]+)$/.exec(authorization ?? '')?.[1];
    if (!token) throw new HoldError('UNAUTHORIZED', 'send a service token as "Authorization: Bearer <jwt>"');
    const issuer = unverifiedIssuer(token);
    const resolver = issuer ? this.#keys.get(issuer) : undefined;
    if (!resolver) throw new HoldError('UNAUTHORIZED', 'the token issuer is not trusted by this hold');
    try {
      const { payload } = await jwtVerify(token, await resolver, {
        issuer,
        audience: this.#options.audience,
        algorithms: ['EdDSA', 'ES256'],
        requiredClaims: ['iss', 'sub', 'aud', 'exp', 'iat'],
        clockTolerance: this.#options.clockToleranceSeconds ?? 5,
      });
      const lifetime = (payload.exp as number) - (payload.iat as number);
      if (lifetime > this.#options.maxLifetimeSeconds) {
        throw new HoldError('UNAUTHORIZED', `token lifetime ${lifetime}s exceeds ${this.#options.maxLifetimeSeconds}s`);
      }
      if (typeof payload.sub !== 'string' || !payload.sub.startsWith('did:')) {
        throw new HoldError('UNAUTHORIZED', 'token subject must be a DID');
      }
      return { did: payload.sub, issuer: issuer as string };
    } catch (err) {
      if (err instanceof HoldError) throw err;
      throw new HoldError('UNAUTHORIZED', describeJoseError(err), { cause: err });
    }
  }
}

async function resolverFor(publicKey: string | JWK): Promise<KeyResolver> {
  if (typeof publicKey !== 'string') {
    const set = createLocalJWKSet({ keys: [publicKey] });
    return (header) => set(header as Parameters<typeof set>[0]);
  }
  for (const alg of ['EdDSA', 'ES256']) {
    try {
      const key = await importSPKI(publicKey, alg);
      return async () => key;
    } catch {
      // try the next algorithm
    }
  }
  throw new TypeError('trusted issuer publicKey must be an SPKI PEM Ed25519 or P-256 key, or a JWK');
}

function unverifiedIssuer(token: string): string | undefined {
  try {
    const payload = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as { iss?: unknown };
    return typeof payload.iss === 'string' ? payload.iss : undefined;
  } catch {
    return undefined;
  }
}

function describeJoseError(err: unknown): string {
  if (err instanceof joseErrors.JWTExpired) return 'the token has expired';
  if (err instanceof joseErrors.JWTClaimValidationFailed) return `the token's ${err.claim} claim is not valid`;
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return 'the token signature is not valid';
  return 'the token is not valid';
}
