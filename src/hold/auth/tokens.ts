import { createLocalJWKSet, errors as joseErrors, importSPKI, jwtVerify, type CryptoKey, type JWK, type KeyObject } from 'jose';
import { HoldError } from '../errors.ts';
import { SERVICE_NAME, claimantOf } from '../../core/service-token.ts';

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
  /** Longest lifetime accepted, in seconds: both `exp - iat` and `exp - now`. */
  maxLifetimeSeconds: number;
  /** How far the registry's clock may run ahead of or behind the hold's. */
  clockToleranceSeconds?: number;
  /** Clock override, for tests. */
  now?: () => number;
}

export interface VerifiedCaller {
  /** The DID the registry acts for (`sub`). */
  did: string;
  issuer: string;
  /** Whose claims the caller's claims are: the issuer, and its service (`svc`) when it names one. */
  claimant: string;
}

export const DEFAULT_CLOCK_TOLERANCE_SECONDS = 5;

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
        clockTolerance: this.#options.clockToleranceSeconds ?? DEFAULT_CLOCK_TOLERANCE_SECONDS,
      });
      const problem = lifetimeProblem(payload.iat as number, payload.exp as number, {
        now: (this.#options.now?.() ?? Date.now()) / 1000,
        maxLifetimeSeconds: this.#options.maxLifetimeSeconds,
        clockToleranceSeconds: this.#options.clockToleranceSeconds ?? DEFAULT_CLOCK_TOLERANCE_SECONDS,
      });
      if (problem) throw new HoldError('UNAUTHORIZED', problem);
      if (typeof payload.sub !== 'string' || !payload.sub.startsWith('did:')) {
        throw new HoldError('UNAUTHORIZED', 'token subject must be a DID');
      }
      const service = payload.svc;
      if (service !== undefined && (typeof service !== 'string' || !SERVICE_NAME.test(service))) {
        throw new HoldError('UNAUTHORIZED', 'the token svc claim is not a service name');
      }
      return { did: payload.sub, issuer: issuer as string, claimant: claimantOf(issuer as string, service) };
    } catch (err) {
      if (err instanceof HoldError) throw err;
      throw new HoldError('UNAUTHORIZED', describeJoseError(err), { cause: err });
    }
  }
}

/**
 * Why a token's times are refused, or undefined. `exp - iat` alone is not
 * enough: a token dated a year ahead would pass it and stay usable for a
 * year, so the hold also bounds `iat` and `exp` against its own clock.
 */
export function lifetimeProblem(
  iat: number,
  exp: number,
  limits: { now: number; maxLifetimeSeconds: number; clockToleranceSeconds: number },
): string | undefined {
  const { now, maxLifetimeSeconds: max, clockToleranceSeconds: skew } = limits;
  if (iat > now + skew) return `the token was issued in the future (iat is ${Math.round(iat - now)}s ahead of this hold's clock; at most ${skew}s allowed)`;
  if (exp - iat > max) return `token lifetime ${exp - iat}s exceeds ${max}s`;
  if (exp - now > max) return `the token expires ${Math.round(exp - now)}s from now; at most ${max}s allowed`;
  return undefined;
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
