import { createHash, randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';

export interface BuiltImage {
  dir: string;
  tag: string;
  manifestDigest: string;
  /** Layer digests with their sizes, config last. */
  blobs: { digest: string; size: number }[];
}

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

/** The 512-byte ustar header of one regular file. */
export function tarHeader(name: string, size: number, mtime = new Date()): Buffer {
  const header = Buffer.alloc(512);
  header.write(name, 0, 100, 'utf8');
  header.write('0000644\0', 100);
  header.write('0000000\0', 108);
  header.write('0000000\0', 116);
  header.write(`${size.toString(8).padStart(11, '0')}\0`, 124);
  header.write(`${Math.floor(mtime.getTime() / 1000).toString(8).padStart(11, '0')}\0`, 136);
  header.write('        ', 148);
  header.write('0', 156);
  header.write('ustar\0', 257);
  header.write('00', 263);
  let checksum = 0;
  for (const byte of header) checksum += byte;
  header.write(`${checksum.toString(8).padStart(6, '0')}\0 `, 148);
  return header;
}

/** A one-file tar archive: a 512-byte header, the data padded to 512, two zero blocks. */
function tarOf(name: string, data: Buffer): Buffer {
  const header = tarHeader(name, data.length);
  const padding = Buffer.alloc((512 - (data.length % 512)) % 512);
  return Buffer.concat([header, data, padding, Buffer.alloc(1024)]);
}

/**
 * Writes an OCI image layout with uncompressed tar layers of random content,
 * one per entry of `layerSizes`.
 */
/** `config` goes over the image config's defaults (linux/amd64, no labels). */
export async function buildImage(dir: string, layerSizes: number[], tag = 'latest', config: Record<string, unknown> = {}): Promise<BuiltImage> {
  const blobsDir = path.join(dir, 'blobs', 'sha256');
  await mkdir(blobsDir, { recursive: true });
  const blobs: { digest: string; size: number }[] = [];
  const put = async (bytes: Buffer) => {
    const hex = sha256(bytes);
    await writeFile(path.join(blobsDir, hex), bytes);
    return { digest: `sha256:${hex}`, size: bytes.length };
  };
  const layers = [];
  const diffIds = [];
  for (const [index, size] of layerSizes.entries()) {
    const layer = tarOf(`file-${index}.bin`, randomBytes(size));
    const stored = await put(layer);
    blobs.push(stored);
    layers.push({ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...stored });
    diffIds.push(stored.digest);
  }
  const configBytes = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: {}, ...config, rootfs: { type: 'layers', diff_ids: diffIds } }));
  const storedConfig = await put(configBytes);
  blobs.push(storedConfig);
  const manifest = Buffer.from(
    JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...storedConfig }, layers }),
  );
  const storedManifest = await put(manifest);
  await writeFile(path.join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  await writeFile(
    path.join(dir, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...storedManifest, annotations: { 'org.opencontainers.image.ref.name': tag } }],
    }),
  );
  return { dir, tag, manifestDigest: storedManifest.digest, blobs };
}
