import { HoldContext, type HoldServiceOptions } from './context.ts';
import { Uploads } from './uploads/uploads.ts';
import { Presigner } from './uploads/presign.ts';
import { Publisher } from './publishing/publish.ts';
import { Claims } from './publishing/claims.ts';
import { Janitor } from './cleanup/janitor.ts';
import type { StorageBackend } from './backends/types.ts';
import type { Quotas } from './quotas/quotas.ts';
import type { UploadRecordStore } from './uploads/records.ts';

export { DEFAULT_DELETION_LEASE_SECONDS, type HoldServiceOptions } from './context.ts';

/**
 * The hold's flows, independent of HTTP, over one `HoldContext`: uploads,
 * the URLs bytes move through, publishing, claims, and cleanup. Each method
 * takes the authenticated DID and the contract's input for its endpoint,
 * checks access, answers the contract's answer, and maps storage errors to
 * `HoldError`; `http/routes.ts` names the method behind each endpoint.
 */
export class HoldService {
  readonly uploads: Uploads;
  readonly presigner: Presigner;
  readonly publisher: Publisher;
  readonly claims: Claims;
  readonly janitor: Janitor;
  readonly #ctx: HoldContext;

  constructor(options: HoldServiceOptions) {
    this.#ctx = new HoldContext(options);
    this.uploads = new Uploads(this.#ctx);
    this.presigner = new Presigner(this.#ctx, this.uploads);
    this.publisher = new Publisher(this.#ctx);
    this.claims = new Claims(this.#ctx);
    this.janitor = new Janitor(this.#ctx, options.janitorBudget);
  }

  get backend(): StorageBackend {
    return this.#ctx.backend;
  }

  /** The upload records, as this process reads and remembers them. */
  get records(): UploadRecordStore {
    return this.#ctx.records;
  }

  /** Storage limits per DID, when configured. */
  get quotas(): Quotas | undefined {
    return this.#ctx.quotas;
  }
}
