import { createHash } from 'node:crypto';
import { ReadTarball, UploadTarball } from '@verdaccio/streams';
import type {
  CallbackAction,
  ILocalPackageManager,
  IReadTarball,
  IUploadTarball,
  Logger,
  Package,
  PackageTransformer,
  ReadPackageCallback,
  StorageUpdateCallback,
  StorageWriteCallback,
} from '@verdaccio/types';
import { setTimeout as sleep } from 'node:timers/promises';
import { isDriverError, type BlobStore, type BlobWriter } from '../driver/types.ts';
import type { PackageStore, TarballRecord } from '../metadata/npm/packages.ts';
import { KeyedMutex } from '../core/keyed-mutex.ts';
import { alreadyExists, notFound, toVerdaccioError, unavailable } from './errors.ts';

/** What a package's storage works with: the metadata's package tables and the hold's blobs. */
export interface StorageBackends {
  packages: PackageStore;
  blobs: BlobStore;
}

const PACKAGE_FILE = 'package.json';

/** How long a publish waits for an unpublish of the same bytes to release them, and how often it looks. */
const DELETION_WAIT_MS = 10_000;
const DELETION_POLL_MS = 50;

/**
 * One npm package's storage: its document in the database, its tarballs in
 * the hold (content-addressed, recorded by filename). Follows Verdaccio's
 * legacy callback contract (`IPackageStorage` in @verdaccio/types 10).
 */
export class HoldfastPackageStorage implements ILocalPackageManager {
  readonly logger: Logger;
  readonly #name: string;
  readonly #ready: Promise<StorageBackends>;
  readonly #locks: KeyedMutex;

  constructor(name: string, ready: Promise<StorageBackends>, locks: KeyedMutex, logger: Logger) {
    this.#name = name;
    this.#ready = ready;
    this.#locks = locks;
    this.logger = logger;
  }

  readPackage(_name: string, callback: ReadPackageCallback): void {
    (async () => {
      const document = await (await this.#ready).packages.readDocument(this.#name);
      if (document === undefined) throw notFound(`package ${this.#name}`);
      return document as Package;
    })().then(
      (document) => callback(null, document),
      (err: unknown) => callback(err),
    );
  }

  createPackage(_name: string, value: Package, callback: CallbackAction): void {
    settle(async () => {
      if (!(await (await this.#ready).packages.createDocument(this.#name, value))) throw alreadyExists(`package ${this.#name}`);
    }, callback);
  }

  savePackage(_name: string, value: Package, callback: CallbackAction): void {
    settle(async () => (await this.#ready).packages.saveDocument(this.#name, value), callback);
  }

  /**
   * Read, modify, write, one update at a time per package in this process.
   * Across Verdaccio instances the last write wins, as with the filesystem
   * storage on a shared volume.
   */
  updatePackage(_name: string, updateHandler: StorageUpdateCallback, onWrite: StorageWriteCallback, transformPackage: PackageTransformer, onEnd: CallbackAction): void {
    this.#locks
      .run(this.#name, async () => {
        const document = (await (await this.#ready).packages.readDocument(this.#name)) as Package | undefined;
        if (document === undefined) throw notFound(`package ${this.#name}`);
        await new Promise<void>((resolve, reject) => updateHandler(document, (err) => (err ? reject(err) : resolve())));
        await new Promise<void>((resolve, reject) => onWrite(this.#name, transformPackage(document), (err: unknown) => (err ? reject(err) : resolve())));
      })
      .then(
        () => onEnd(null),
        (err: unknown) => onEnd(err),
      );
  }

  /** Deletes `package.json` (the document) or a tarball by filename. */
  deletePackage(fileName: string, callback: CallbackAction): void {
    settle(async () => {
      const { packages, blobs } = await this.#ready;
      if (fileName === PACKAGE_FILE) {
        if (!(await packages.deleteDocument(this.#name))) throw notFound(`package ${this.#name}`);
        return;
      }
      const { removed, deletion } = await packages.removeTarball(this.#name, fileName);
      if (!removed) throw notFound(`tarball ${fileName}`);
      if (deletion === undefined) return;
      // Marked as deleting first: a publish of the same bytes meanwhile waits, then claims them again (see `#record`).
      try {
        // A deletion that stalled past the abandon timeout has been taken over by a publish, whose claim a release would now drop.
        if (await packages.deletionCurrent(removed.digest, deletion)) await blobs.release(removed.digest);
      } finally {
        await packages.finishDeletion(removed.digest, deletion);
      }
    }, callback, fileName === PACKAGE_FILE ? `package ${this.#name}` : `tarball ${fileName}`);
  }

  removePackage(callback: CallbackAction): void {
    process.nextTick(() => callback(null));
  }

  /**
   * A stream Verdaccio writes the tarball into. It refuses a name that is
   * taken before reading a byte, emits `open` once the upload has started,
   * and `success` only when the blob is durable and recorded.
   */
  writeTarball(fileName: string): IUploadTarball {
    const stream = new UploadTarball({});
    let writer: BlobWriter | undefined;
    let failed = false;
    let aborted = false;
    let markDone: () => void = () => {};
    const done = new Promise<void>((resolve) => (markDone = resolve));
    const fail = (err: unknown) => {
      if (failed) return;
      failed = true;
      stream.emit('error', err);
    };
    stream.done = () => markDone();
    stream.abort = () => {
      aborted = true;
      writer?.cancel().catch(() => {});
      markDone();
    };
    (async () => {
      const { packages, blobs } = await this.#ready;
      if (await packages.getTarball(this.#name, fileName)) throw alreadyExists(`tarball ${fileName}`);
      writer = await blobs.create();
      if (aborted) return writer.cancel();
      stream.emit('open');
      const hash = createHash('sha256');
      const size = await writer.readFrom(hashing(stream, hash));
      await done;
      if (aborted) return writer.cancel();
      const digest = `sha256:${hash.digest('hex')}`;
      await writer.commit({ digest, size });
      await this.#record({ package: this.#name, filename: fileName, digest, size }, { packages, blobs });
      stream.emit('success');
    })().catch(async (err: unknown) => {
      await writer?.cancel().catch(() => {});
      if (!aborted) fail(toVerdaccioError(err, `tarball ${fileName}`));
    });
    return stream;
  }

  /**
   * Records a tarball whose bytes the commit just published or found. An
   * unpublish of the same bytes may be releasing them at the hold right
   * now, and it drops the claim this publish wrote (one claim per service
   * and digest): wait for it to end, then claim the bytes again, which fails
   * if they are gone. The same protocol as the registry's garbage
   * collection (docs/GC.md).
   */
  async #record(record: TarballRecord, { packages, blobs }: StorageBackends): Promise<void> {
    const deadline = performance.now() + DELETION_WAIT_MS;
    let outcome = await packages.addTarball(record);
    while (outcome === 'deleting' && performance.now() < deadline) {
      await sleep(DELETION_POLL_MS);
      outcome = await packages.addTarball(record);
    }
    if (outcome === 'reclaim') {
      try {
        await blobs.claim(record.digest);
      } catch (err) {
        if (isDriverError(err, 'BLOB_UNKNOWN')) throw unavailable(`the same bytes were unpublished while ${record.filename} was published; publish it again`);
        throw err;
      }
      outcome = await packages.addTarball(record, { reclaimed: true });
    }
    if (outcome === 'deleting' || outcome === 'reclaim') throw unavailable(`the same bytes are being unpublished; publish ${record.filename} again`);
    if (outcome === 'taken') throw alreadyExists(`tarball ${record.filename}`);
  }

  readTarball(fileName: string): IReadTarball {
    const stream = new ReadTarball({});
    let source: NodeJS.ReadableStream & { destroy?: () => void } | undefined;
    stream.abort = () => source?.destroy?.();
    (async () => {
      const { packages, blobs } = await this.#ready;
      const record = await packages.getTarball(this.#name, fileName);
      if (!record) throw notFound(`tarball ${fileName}`);
      source = await blobs.open(record.digest);
      stream.emit('content-length', record.size);
      stream.emit('open');
      source.on('error', (err: unknown) => stream.emit('error', toVerdaccioError(err, `tarball ${fileName}`)));
      source.pipe(stream);
    })().catch((err: unknown) => stream.emit('error', toVerdaccioError(err, `tarball ${fileName}`)));
    return stream;
  }
}

async function* hashing(source: AsyncIterable<unknown>, hash: ReturnType<typeof createHash>): AsyncIterable<Uint8Array> {
  for await (const chunk of source) {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Uint8Array);
    hash.update(bytes);
    yield bytes;
  }
}

/** Runs `work` for Verdaccio's callback; errors about a tarball's bytes (`what`) become Verdaccio's. */
function settle(work: () => Promise<unknown>, callback: CallbackAction, what?: string): void {
  work().then(
    () => callback(null),
    (err: unknown) => callback(what === undefined ? err : toVerdaccioError(err, what)),
  );
}
