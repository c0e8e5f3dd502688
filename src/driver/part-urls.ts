import { mappingHoldErrors } from './errors.ts';
import type { HoldPartUrl } from '../protocol/hold-api.ts';
import type { UrlSource } from './transport.ts';
import type { UploadRef, WriterContext } from './writer-context.ts';

/** A presigned URL used only while it has at least this long to live. */
const URL_MARGIN_MS = 30_000;

/**
 * Where a writer's part PUTs get their presigned URLs: ones the hold handed
 * out with its last answer, one asked for early while the part still fills,
 * or a fresh one from the hold.
 */
export class PartUrls {
  readonly #ctx: Pick<WriterContext, 'hold' | 'did'>;
  readonly #upload: UploadRef;
  /** The writer epoch the writer writes as now. */
  readonly #epoch: () => number | undefined;
  /** The next part's URL, asked for while its bytes still arrive. */
  #prefetched: { partNumber: number; url: Promise<string> } | undefined;
  /** Part URLs the hold handed out with its last answer, by part number. */
  #kept = new Map<number, HoldPartUrl>();

  constructor(ctx: Pick<WriterContext, 'hold' | 'did'>, upload: UploadRef, urls: readonly HoldPartUrl[] | undefined, epoch: () => number | undefined) {
    this.#ctx = ctx;
    this.#upload = upload;
    this.#epoch = epoch;
    this.keep(urls);
  }

  /** URLs from a hold answer replace the ones kept from the previous answer. */
  keep(urls: readonly HoldPartUrl[] | undefined): void {
    this.#kept = new Map((urls ?? []).map((url) => [url.part_number, url]));
  }

  /** A URL the hold already handed out for this part, if it has time left. */
  take(partNumber: number): string | undefined {
    const kept = this.#kept.get(partNumber);
    this.#kept.delete(partNumber);
    return kept && usable(kept) ? kept.url : undefined;
  }

  /**
   * A URL the hold already handed out for this part, left in place: a PUT
   * streamed from it may be dropped unfinished (`abandonStreaming`), and the
   * part is then sent again through the same URL.
   */
  peek(partNumber: number): string | undefined {
    const kept = this.#kept.get(partNumber);
    return kept && usable(kept) ? kept.url : undefined;
  }

  /** How many parts from `partNumber` on have a URL at hand. */
  available(partNumber: number): number {
    let count = 0;
    for (let url = this.#kept.get(partNumber); url && usable(url); url = this.#kept.get(partNumber + count)) count++;
    return count;
  }

  /**
   * Asks for the URL of the part being filled once it holds enough bytes to
   * become a part, so the PUT need not wait for a hold round trip. A failure
   * here is ignored: the PUT asks again and reports it. `streaming` is the
   * part whose PUT already travels, which needs no URL.
   */
  prefetch(partNumber: number, streaming: number | undefined): void {
    if (this.#prefetched?.partNumber === partNumber || this.#kept.has(partNumber) || streaming === partNumber) return;
    const url = this.fetch(partNumber);
    url.catch(() => {});
    this.#prefetched = { partNumber, url };
  }

  /** A new URL from the hold. */
  fetch(partNumber: number): Promise<string> {
    const { hold, did } = this.#ctx;
    return mappingHoldErrors(() => hold.partPresignedUrl(did, this.#upload.uploadName, this.#upload.uploadId, partNumber, this.#epoch())).then((view) => view.url);
  }

  /**
   * The URLs for one part's PUT: a kept or prefetched URL first (each used
   * once, and only when no fresh one is asked for), then new ones.
   */
  sourceFor(partNumber: number): UrlSource {
    let prefetched = this.#prefetched?.partNumber === partNumber ? this.#prefetched.url : undefined;
    if (prefetched) this.#prefetched = undefined;
    let kept = this.take(partNumber);
    return async (fresh) => {
      const handedOut = kept;
      kept = undefined;
      if (handedOut && !fresh) return handedOut;
      const early = prefetched;
      prefetched = undefined;
      if (early && !fresh) {
        const url = await early.catch(() => undefined);
        if (url) return url;
      }
      return this.fetch(partNumber);
    };
  }
}

function usable(url: HoldPartUrl): boolean {
  return Date.parse(url.expires_at) - Date.now() > URL_MARGIN_MS;
}
