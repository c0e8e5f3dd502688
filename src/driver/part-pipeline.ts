import { PassThrough } from 'node:stream';
import type { HoldPart } from '../protocol/hold-api.ts';
import type { PartUrls } from './part-urls.ts';
import type { Tail } from './tail.ts';
import type { WriterContext } from './writer-context.ts';

/**
 * A writer's parts on their way to S3. A full part buffer becomes a part PUT
 * straight to its presigned URL while reading continues, up to
 * `maxPartsInFlight` parts per writer; a part a request will fill is sent
 * while its bytes arrive. Sent parts wait here until the hold records them.
 */
export class PartPipeline {
  readonly #ctx: Pick<WriterContext, 'did' | 'transport' | 'budget' | 'maxPartsInFlight' | 'step'>;
  readonly #tail: Tail;
  readonly #urls: PartUrls;
  readonly #signal: AbortSignal;
  readonly #uploadName: string;
  /** Fails the writer: called with `failure` when a part may not be cut. */
  readonly #fail: (err: unknown) => never;
  /** Parts the hold has recorded. */
  readonly #recorded: HoldPart[];
  /** Parts sent but not yet recorded, by part number. */
  readonly #uploaded = new Map<number, HoldPart>();
  readonly #inFlight = new Map<number, Promise<void>>();
  #nextPart: number;
  /** Bytes cut into parts: recorded, uploaded or in flight. */
  #partBytes: number;
  /** The first part PUT that failed, or what failed the writer: no part is cut after it. */
  #failure: unknown;
  /** The part being sent while its bytes arrive. */
  #streaming: { partNumber: number; body: PassThrough; etag: Promise<string> } | undefined;
  #finalPart: HoldPart | undefined;

  constructor(
    ctx: Pick<WriterContext, 'did' | 'transport' | 'budget' | 'maxPartsInFlight' | 'step'>,
    parts: { recorded: readonly HoldPart[]; tail: Tail; urls: PartUrls; signal: AbortSignal; fail: (err: unknown) => never; uploadName: string },
  ) {
    this.#ctx = ctx;
    this.#tail = parts.tail;
    this.#urls = parts.urls;
    this.#signal = parts.signal;
    this.#uploadName = parts.uploadName;
    this.#fail = parts.fail;
    this.#recorded = [...parts.recorded];
    this.#nextPart = parts.recorded.length + 1;
    this.#partBytes = parts.recorded.reduce((sum, part) => sum + part.size, 0);
  }

  get inFlight(): number {
    return this.#inFlight.size;
  }

  /** Parts the hold has recorded, in order. */
  get recorded(): readonly HoldPart[] {
    return this.#recorded;
  }

  /** The number the next part cut gets. */
  get nextPart(): number {
    return this.#nextPart;
  }

  /** Bytes cut into parts: recorded, uploaded or in flight. */
  get partBytes(): number {
    return this.#partBytes;
  }

  /** What stopped the pipeline: a part PUT that failed, or the writer's own failure (`halt`). */
  get failure(): unknown {
    return this.#failure;
  }

  /** The writer failed: no part is cut after this. */
  halt(reason: unknown): void {
    this.#failure = reason;
  }

  /**
   * Starts the PUT of the part being filled, if what this request has yet to
   * send (`remaining`) fills it and its URL is at hand: the part then travels
   * while it arrives instead of after. The bytes stay in the buffer, so a PUT
   * that fails is sent again from there (`cut`).
   */
  streamIfFilled(remaining: number): void {
    const buffer = this.#tail.buffer as Buffer;
    const fill = this.#tail.fill;
    if (this.#streaming) return;
    if (remaining < buffer.length - fill || this.#inFlight.size >= this.#ctx.maxPartsInFlight) return;
    const partNumber = this.#nextPart;
    const url = this.#urls.peek(partNumber);
    if (!url) return;
    const body = new PassThrough();
    body.on('error', () => {});
    const etag = this.#ctx.transport.putStreaming(url, body, buffer.length, this.#signal);
    etag.catch(() => {});
    if (fill > 0) body.write(buffer.subarray(0, fill));
    this.#streaming = { partNumber, body, etag };
  }

  /** Bytes just added to the part buffer go to the PUT streaming it, if any. */
  stream(bytes: Buffer): void {
    this.#streaming?.body.write(bytes);
  }

  /** The request ended before the part filled: that PUT can never complete, and the bytes stay the tail. */
  abandonStreaming(): void {
    this.#streaming?.body.destroy(new Error('the request ended before the part was complete'));
    this.#streaming = undefined;
  }

  /** Asks for the URL of the part being filled early (see `PartUrls.prefetch`). */
  prefetchPartUrl(): void {
    this.#urls.prefetch(this.#nextPart, this.#streaming?.partNumber);
  }

  /** Sends the part buffer's first `length` bytes as the next part. */
  async cut(length = this.#tail.fill): Promise<void> {
    const whole = length === (this.#tail.buffer as Buffer).length;
    // A streamed PUT gets its end at once, before any wait: S3 is reading it.
    const streaming = whole && this.#streaming?.partNumber === this.#nextPart ? this.#streaming : undefined;
    if (streaming) {
      this.#streaming = undefined;
      streaming.body.end();
    } else {
      this.abandonStreaming();
    }
    while (this.#inFlight.size >= this.#ctx.maxPartsInFlight) await Promise.race(this.#inFlight.values());
    if (this.#failure) {
      if (streaming) this.#tail.releaseWhenSent(streaming.etag);
      this.#fail(this.#failure);
    }
    const buffer = this.#tail.take();
    const body = whole ? buffer : buffer.subarray(0, length);
    const partNumber = this.#nextPart++;
    this.#partBytes += body.length;
    const task = (streaming ? streaming.etag.catch(() => this.putPart(partNumber, body)) : this.putPart(partNumber, body))
      .then(async (etag) => {
        await this.#ctx.step('part-sent', this.#uploadName);
        this.#uploaded.set(partNumber, { part_number: partNumber, etag, size: body.length });
      })
      .catch((err: unknown) => {
        this.#failure ??= err;
      })
      .finally(() => {
        this.#ctx.budget.recycle(buffer, this.#ctx.did);
        this.#inFlight.delete(partNumber);
      });
    this.#inFlight.set(partNumber, task);
  }

  async putPart(partNumber: number, body: Uint8Array): Promise<string> {
    const source = this.#urls.sourceFor(partNumber);
    await this.#ctx.step('part-sending', this.#uploadName);
    return this.#ctx.transport.put(source, body, 'part', this.#signal);
  }

  /** Every part in flight, done; a failure is left in `failure`. */
  sent(): Promise<void[]> {
    return Promise.all(this.#inFlight.values());
  }

  /** Every part in flight, done or failed. */
  settled(): Promise<PromiseSettledResult<void>[]> {
    return Promise.allSettled(this.#inFlight.values());
  }

  /** The parts sent since the hold last recorded any, in order. */
  unrecorded(): HoldPart[] {
    return [...this.#uploaded.values()].sort((a, b) => a.part_number - b.part_number);
  }

  /** The hold recorded `parts` (this upload's `unrecorded()`). */
  markRecorded(parts: readonly HoldPart[]): void {
    this.#recorded.push(...parts);
    this.#uploaded.clear();
  }

  /** The last part (`tail`, possibly empty), then every part in order. */
  async finish(tail: Buffer): Promise<HoldPart[]> {
    const anyPart = this.#recorded.length + this.#uploaded.size > 0;
    if (!this.#finalPart && (tail.length > 0 || !anyPart)) {
      const partNumber = this.#nextPart++;
      const etag = await this.putPart(partNumber, tail);
      await this.#ctx.step('part-sent', this.#uploadName);
      this.#finalPart = { part_number: partNumber, etag, size: tail.length };
    }
    const parts = [...this.#recorded, ...this.#uploaded.values()];
    if (this.#finalPart) parts.push(this.#finalPart);
    return parts.sort((a, b) => a.part_number - b.part_number);
  }

  /**
   * Sends `tail` as the last part ahead of the commit, which then has nothing
   * left to send. Best effort: if it fails, the commit sends it.
   */
  async sendFinal(tail: Buffer): Promise<void> {
    // A tail as long as a whole part would look like one to /upload-status (where part sizes double).
    if (this.#finalPart || tail.length === 0 || [...this.#recorded, ...this.#uploaded.values()].some((part) => part.size === tail.length)) return;
    const partNumber = this.#nextPart++;
    try {
      this.#finalPart = { part_number: partNumber, etag: await this.putPart(partNumber, tail), size: tail.length };
    } catch {
      if (this.#nextPart === partNumber + 1) this.#nextPart = partNumber;
    }
  }

  /** New bytes (or a failed commit): the final part is no longer final. */
  reopen(): void {
    if (!this.#finalPart) return;
    this.#nextPart = this.#finalPart.part_number;
    this.#finalPart = undefined;
  }
}
