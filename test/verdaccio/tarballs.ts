import type { HoldfastPackageStorage } from '../../src/verdaccio/package-storage.ts';

/** Publishes `bytes` as `fileName` of the package; resolves once recorded, rejects with the plugin's error. */
export function publishTarball(storage: HoldfastPackageStorage, fileName: string, bytes: Buffer): Promise<void> {
  const stream = storage.writeTarball(fileName);
  const stored = new Promise<void>((resolve, reject) => {
    stream.once('success', resolve);
    stream.once('error', reject);
  });
  stream.once('open', () => {
    stream.end(bytes);
    stream.done();
  });
  return stored;
}

export function unpublishTarball(storage: HoldfastPackageStorage, fileName: string): Promise<void> {
  return new Promise<void>((resolve, reject) => storage.deletePackage(fileName, (err) => (err ? reject(err as Error) : resolve())));
}

export async function readTarball(storage: HoldfastPackageStorage, fileName: string): Promise<Buffer> {
  const stream = storage.readTarball(fileName);
  const chunks: Buffer[] = [];
  return new Promise<Buffer>((resolve, reject) => {
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.once('end', () => resolve(Buffer.concat(chunks)));
    stream.once('error', reject);
  });
}
