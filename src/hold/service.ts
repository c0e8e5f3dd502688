import { HoldContext, type HoldServiceOptions } from './context.ts';
import { Uploads, type CompleteMultipartInput, type PartUrlView, type UploadProgressInput, type UploadStatusInput, type UploadView } from './uploads.ts';
import { Presigner, type PresignedUrlView } from './presign.ts';
import { Publisher, type MoveInput } from './publish.ts';
import { Claims } from './claims.ts';
import { Janitor } from './janitor.ts';
import type { StorageBackend } from './backends/types.ts';

export { DEFAULT_DELETION_LEASE_SECONDS, type HoldServiceOptions } from './context.ts';
export type { PartUrlView, UploadView } from './uploads.ts';
export type { PresignedUrlView } from './presign.ts';
export type { CompletingPart } from './publish.ts';

/**
 * The hold's operations, one method per endpoint, independent of HTTP. Every
 * method takes the authenticated DID and already-typed input; it checks
 * access, and maps storage errors to `HoldError`. The work is done by the
 * parts below, which share one `HoldContext`.
 */
export class HoldService {
  readonly #ctx: HoldContext;
  readonly #uploads: Uploads;
  readonly #presigner: Presigner;
  readonly #publisher: Publisher;
  readonly #claims: Claims;
  readonly #janitor: Janitor;

  constructor(options: HoldServiceOptions) {
    this.#ctx = new HoldContext(options);
    this.#uploads = new Uploads(this.#ctx);
    this.#presigner = new Presigner(this.#ctx, this.#uploads);
    this.#publisher = new Publisher(this.#ctx);
    this.#claims = new Claims(this.#ctx);
    this.#janitor = new Janitor(this.#ctx);
  }

  get backend(): StorageBackend {
    return this.#ctx.backend;
  }

  startMultipart(
    did: string,
    input: { digest?: string; client_state?: Record<string, unknown>; presign_parts?: number },
  ): Promise<{ upload_id: string; upload_name: string; expires_at: string; part_urls?: PartUrlView[] }> {
    return this.#uploads.start(did, input);
  }

  partPresignedUrl(did: string, input: { digest: string; upload_id: string; part_number: number; writer_epoch?: number }): Promise<PresignedUrlView> {
    return this.#presigner.partUrl(did, input);
  }

  completeMultipart(did: string, input: CompleteMultipartInput): Promise<{ upload_name: string; size: number }> {
    return this.#uploads.complete(did, input);
  }

  abortMultipart(did: string, input: { digest: string; upload_id: string; writer_epoch?: number }): Promise<{ aborted: true }> {
    return this.#uploads.abort(did, input);
  }

  putPresignedUrl(did: string, input: { digest: string; upload_id?: string; offset?: number; writer_epoch?: number }): Promise<PresignedUrlView> {
    return this.#presigner.putUrl(did, input);
  }

  getPresignedUrl(did: string, input: { digest: string; method?: 'GET' | 'HEAD'; upload_id?: string; offset?: number }): Promise<PresignedUrlView> {
    return this.#presigner.getUrl(did, input);
  }

  move(did: string, input: MoveInput, issuer = ''): Promise<{ digest: string; size: number; existed: boolean }> {
    return this.#publisher.move(did, input, issuer);
  }

  claim(did: string, input: { digest: string }, issuer = ''): Promise<{ digest: string; size: number }> {
    return this.#claims.claim(did, input, issuer);
  }

  release(did: string, input: { digest: string }, issuer = ''): Promise<{ deleted: boolean; remaining_claims: number }> {
    return this.#claims.release(did, input, issuer);
  }

  stat(did: string, input: { digest: string }): Promise<{ digest: string; size: number }> {
    return this.#claims.stat(did, input);
  }

  delete(did: string, input: { digest: string }, issuer = ''): Promise<{ deleted: boolean }> {
    return this.#claims.delete(did, input, issuer);
  }

  uploadStatus(did: string, input: UploadStatusInput): Promise<UploadView> {
    return this.#uploads.status(did, input);
  }

  uploadProgress(did: string, input: UploadProgressInput): Promise<UploadView> {
    return this.#uploads.progress(did, input);
  }

  purgeIdleUploads(): Promise<{ purged: number; skipped: number }> {
    return this.#janitor.purgeIdleUploads();
  }

  collectOrphans(): Promise<number> {
    return this.#janitor.collectOrphans();
  }

  finishAbandonedDeletions(): Promise<number> {
    return this.#janitor.finishAbandonedDeletions();
  }
}
