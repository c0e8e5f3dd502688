/**
 * Distinct, incompressible benchmark blobs without holding them in memory:
 * every 1 MiB segment is one shared random block whose first 16 bytes are
 * replaced by (nonce, segment index), so no two blobs or segments are equal and
 * no registry can skip an upload because the digest already exists.
 */
import { createHash, randomBytes } from 'node:crypto';

const SEGMENT = 1024 * 1024;
const HEADER = 16;
const shared = randomBytes(SEGMENT);
let nonces = 0;

export class BlobSource {
  readonly size: number;
  readonly #nonce: number;
  #digest: string | undefined;

  constructor(size: number) {
    this.size = size;
    this.#nonce = (process.pid << 16) + nonces++;
  }

  /** The sha256 digest, computed once (outside any timed section). */
  digest(): string {
    if (!this.#digest) {
      const hash = createHash('sha256');
      for (const piece of this.pieces()) hash.update(piece);
      this.#digest = `sha256:${hash.digest('hex')}`;
    }
    return this.#digest;
  }

  /** The bytes as zero-copy views, in order; for streamed bodies. */
  *pieces(): Generator<Buffer> {
    for (let offset = 0; offset < this.size; offset += SEGMENT) {
      const length = Math.min(SEGMENT, this.size - offset);
      const header = this.#header(offset / SEGMENT);
      yield header.subarray(0, Math.min(HEADER, length));
      if (length > HEADER) yield shared.subarray(HEADER, length);
    }
  }

  /**
   * A contiguous copy of [start, start + length); for chunks and parts. Into
   * `into` when given (at least `length` bytes, returned as a view), so a
   * client sending one chunk at a time reuses one buffer and does not load its
   * own garbage collector with a fresh one per chunk.
   */
  bytes(start: number, length: number, into?: Buffer): Buffer {
    const out = into ? into.subarray(0, length) : Buffer.allocUnsafe(length);
    let written = 0;
    while (written < length) {
      const offset = start + written;
      const segment = Math.floor(offset / SEGMENT);
      const within = offset % SEGMENT;
      const take = Math.min(length - written, SEGMENT - within, this.size - offset);
      if (within < HEADER) {
        const header = this.#header(segment);
        const fromHeader = Math.min(take, HEADER - within);
        header.copy(out, written, within, within + fromHeader);
        shared.copy(out, written + fromHeader, HEADER, within + take);
      } else {
        shared.copy(out, written, within, within + take);
      }
      written += take;
    }
    return out;
  }

  #header(segment: number): Buffer {
    const header = Buffer.alloc(HEADER);
    header.writeUInt32BE(0x686f6c64, 0);
    header.writeUInt32BE(this.#nonce >>> 0, 4);
    header.writeUInt32BE(segment, 8);
    return header;
  }
}
