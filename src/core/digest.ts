/**
 * Content digests as the OCI image spec defines them, restricted to the two
 * algorithms registries must accept. Parsing is the only way to get a
 * `Digest`, so a value of this type is always safe to put in a storage key.
 */

export type DigestAlgorithm = 'sha256' | 'sha512';

export interface Digest {
  readonly algorithm: DigestAlgorithm;
  readonly hex: string;
  /** `algorithm:hex`, the canonical string form. */
  readonly value: string;
}

const HEX_LENGTH: Readonly<Record<DigestAlgorithm, number>> = Object.freeze({ sha256: 64, sha512: 128 });
const DIGEST_PATTERN = /^(sha256|sha512):([a-f0-9]+)$/;

export function parseDigest(input: unknown): Digest | undefined {
  if (typeof input !== 'string') return undefined;
  const match = DIGEST_PATTERN.exec(input);
  if (!match) return undefined;
  const algorithm = match[1] as DigestAlgorithm;
  const hex = match[2] as string;
  if (hex.length !== HEX_LENGTH[algorithm]) return undefined;
  return Object.freeze({ algorithm, hex, value: input });
}

export function isDigest(input: unknown): input is string {
  return parseDigest(input) !== undefined;
}
