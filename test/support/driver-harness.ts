import { expect } from 'chai';
import { createHash } from 'node:crypto';
import createHoldDriver, { type BlobStore, type HoldDriver, type DriverConfigInput } from '../../src/driver/index.ts';
import type { StorageRequestEvent } from '../../src/driver/transport.ts';
import { sha256 } from './bytes.ts';
import { AUDIENCE, ISSUER, startTestHold, type BackendKind, type TestHold, type TestHoldOptions } from './hold-harness.ts';

export interface DriverFixture {
  hold: TestHold;
  /** Makes a driver (a stand-in for one registry process) against the hold. */
  driver(overrides?: Partial<DriverConfigInput>): HoldDriver;
  config(overrides?: Partial<DriverConfigInput>): DriverConfigInput;
  /** Every byte-carrying storage request any driver made. */
  requests: StorageRequestEvent[];
  close(): Promise<void>;
}

export async function startDriverFixture(backend: BackendKind, options: TestHoldOptions = {}): Promise<DriverFixture> {
  const hold = await startTestHold(backend, options);
  const drivers: HoldDriver[] = [];
  const requests: StorageRequestEvent[] = [];
  const config = (overrides: Partial<DriverConfigInput> = {}): DriverConfigInput => ({
    hold: { url: hold.url, audience: AUDIENCE },
    issuer: ISSUER,
    privateKey: hold.keys.privateKey,
    provider: 'minio',
    partSize: 5 * 1024 * 1024,
    retry: { attempts: 6, baseDelayMs: 10, maxDelayMs: 200 },
    ...overrides,
  });
  return {
    hold,
    requests,
    config,
    driver(overrides = {}) {
      const driver = createHoldDriver(config(overrides), { onStorageRequest: (event) => requests.push(event) });
      drivers.push(driver);
      return driver;
    },
    async close() {
      await Promise.all(drivers.map((driver) => driver.close()));
      await hold.close();
    },
  };
}

/**
 * Deterministic pseudo-random bytes: the same (seed, offset, length) always
 * gives the same bytes, so another process can regenerate what it must send.
 */
export function patternBytes(seed: string, offset: number, length: number): Buffer {
  const out = Buffer.allocUnsafe(length);
  const block = 32;
  let written = 0;
  let index = Math.floor(offset / block);
  let skip = offset % block;
  while (written < length) {
    const digest = createHash('sha256').update(`${seed}:${index}`).digest();
    const take = Math.min(block - skip, length - written);
    digest.copy(out, written, skip, skip + take);
    written += take;
    skip = 0;
    index++;
  }
  return out;
}

/**
 * The blob is stored under its digest, exactly (read back and hashed), and
 * no multipart upload is left behind; with `noTempObjects`, no upload
 * objects either.
 */
export async function expectStored(fixture: DriverFixture, store: BlobStore, blob: Buffer, options: { noTempObjects?: boolean } = {}): Promise<void> {
  const digest = sha256(blob);
  expect(await store.stat(digest)).to.deep.equal({ digest, size: blob.length });
  const read = await readAll(await store.open(digest));
  expect(read.length).to.equal(blob.length);
  expect(sha256(read)).to.equal(digest);
  expect(await fixture.hold.inspect.pendingMultipartUploads()).to.equal(0);
  if (options.noTempObjects) expect(await fixture.hold.inspect.keys('holdfast/uploads/'), 'no temp objects left').to.deep.equal([]);
}

export async function readAll(stream: AsyncIterable<unknown>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
