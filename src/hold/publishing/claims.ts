import { HoldError } from '../errors.ts';
import { mappingStorageErrors } from '../storage-errors.ts';
import { requireContentDigest, type HoldContext } from '../context.ts';
import type { HoldInput, HoldResponse } from '../../protocol/hold-api.ts';

/** Registries' claims on published blobs, and the blobs' existence (see `BlobLifecycle`). */
export class Claims {
  readonly #ctx: HoldContext;

  constructor(ctx: HoldContext) {
    this.#ctx = ctx;
  }

  /** Records that the calling registry references an existing blob (e.g. one it adopted from a bucket). */
  async claim(did: string, input: HoldInput<'claim'>, issuer = ''): Promise<HoldResponse<'claim'>> {
    this.#ctx.authorize(did, 'write');
    const digest = requireContentDigest(input.digest);
    const key = this.#ctx.key({ kind: 'blob', digest });
    return mappingStorageErrors(async () => {
      if (!(await this.#ctx.backend.stat(key))) throw new HoldError('BLOB_UNKNOWN');
      await this.#ctx.blobs.putClaim(digest, issuer);
      await this.#ctx.blobs.awaitNoDeletion(digest);
      // Looked at again once no deletion runs: the first look may predate one that has finished since.
      const object = await this.#ctx.backend.stat(key);
      if (!object) {
        await this.#ctx.blobs.dropClaim(digest, issuer);
        throw new HoldError('BLOB_UNKNOWN');
      }
      // A mount keeps the bytes for this DID as an upload would: it is charged the same, once no deletion runs
      // (a refusal leaves the registry's claim, which its own GC gives back).
      await this.#ctx.quotas?.charge(did, digest, object.size);
      return { digest: digest.value, size: object.size };
    });
  }

  /**
   * The calling registry no longer references the blob. The bytes are deleted
   * when no registry's claim remains, so a hold shared by several registries
   * keeps a blob any of them still uses.
   */
  async release(did: string, input: HoldInput<'release'>, issuer = ''): Promise<HoldResponse<'release'>> {
    this.#ctx.authorize(did, 'write');
    const digest = requireContentDigest(input.digest);
    return mappingStorageErrors(async () => {
      await this.#ctx.blobs.dropClaim(digest, issuer);
      await this.#ctx.step('release:claim-dropped', digest);
      const remaining = await this.#ctx.blobs.countClaims(digest);
      await this.#ctx.step('release:claims-counted', digest);
      if (remaining > 0) return { deleted: false, remaining_claims: remaining };
      return this.#ctx.blobs.deleteUnclaimed(digest);
    });
  }

  async stat(did: string, input: HoldInput<'stat'>): Promise<HoldResponse<'stat'>> {
    this.#ctx.authorize(did, 'read');
    const digest = requireContentDigest(input.digest);
    const object = await mappingStorageErrors(() => this.#ctx.backend.stat(this.#ctx.key({ kind: 'blob', digest })));
    if (!object) throw new HoldError('BLOB_UNKNOWN');
    return { digest: digest.value, size: object.size };
  }

  /**
   * The older name for `release`, kept for clients of the hold API that call
   * it: on a hold several registries share, a registry may only give up its
   * own claim, never remove bytes another registry still claims.
   */
  async delete(did: string, input: HoldInput<'delete'>, issuer = ''): Promise<HoldResponse<'delete'>> {
    return { deleted: (await this.release(did, input, issuer)).deleted };
  }
}
