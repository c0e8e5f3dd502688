import { createHash } from 'node:crypto';
import { parseDigest } from '../core/digest.ts';
import { RegistryError } from './errors.ts';

export const MEDIA_TYPES = Object.freeze({
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
});

const INDEX_TYPES = new Set<string>([MEDIA_TYPES.ociIndex, MEDIA_TYPES.dockerList]);
const IMAGE_TYPES = new Set<string>([MEDIA_TYPES.ociManifest, MEDIA_TYPES.dockerManifest]);
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

export interface ParsedManifest {
  digest: string;
  mediaType: string;
  /** Blobs that must exist in the repository (config and distributable layers). */
  blobs: string[];
  /** Manifests an index references. */
  manifests: string[];
  subject?: string;
  artifactType?: string;
  annotations?: Record<string, string>;
}

interface DescriptorJson {
  mediaType?: unknown;
  digest?: unknown;
  size?: unknown;
  urls?: unknown;
}

/**
 * Checks a manifest's bytes against the spec: JSON, a known media type (from
 * the Content-Type or the body; they must agree), schemaVersion 2, and valid
 * descriptors. Returns what the registry needs to store and link it.
 */
export function parseManifest(content: Buffer, contentType: string | undefined): ParsedManifest {
  let json: Record<string, unknown>;
  try {
    const parsed: unknown = JSON.parse(content.toString('utf8'));
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not an object');
    json = parsed as Record<string, unknown>;
  } catch {
    throw new RegistryError('MANIFEST_INVALID', 'the manifest is not a JSON object');
  }
  const declared = typeof json.mediaType === 'string' ? json.mediaType : undefined;
  const header = contentType?.split(';')[0]?.trim();
  const mediaType = declared ?? header;
  if (!mediaType || (!INDEX_TYPES.has(mediaType) && !IMAGE_TYPES.has(mediaType))) {
    throw new RegistryError('MANIFEST_INVALID', `unsupported manifest media type ${mediaType ?? '(none)'}`);
  }
  if (declared && header && header !== declared && header !== 'application/json') {
    throw new RegistryError('MANIFEST_INVALID', `Content-Type ${header} does not match the manifest's mediaType ${declared}`);
  }
  if (json.schemaVersion !== 2) throw new RegistryError('MANIFEST_INVALID', 'schemaVersion must be 2');

  const result: ParsedManifest = {
    digest: `sha256:${createHash('sha256').update(content).digest('hex')}`,
    mediaType,
    blobs: [],
    manifests: [],
  };
  if (IMAGE_TYPES.has(mediaType)) {
    const config = descriptor(json.config, 'config');
    if (!Array.isArray(json.layers)) throw new RegistryError('MANIFEST_INVALID', 'layers must be an array');
    result.blobs.push(config.digest);
    json.layers.forEach((layer, index) => {
      const parsed = descriptor(layer, `layers[${index}]`);
      if (!parsed.foreign) result.blobs.push(parsed.digest);
    });
    const configType = (json.config as DescriptorJson).mediaType;
    if (typeof json.artifactType === 'string') result.artifactType = json.artifactType;
    else if (typeof configType === 'string') result.artifactType = configType;
  } else {
    if (!Array.isArray(json.manifests)) throw new RegistryError('MANIFEST_INVALID', 'manifests must be an array');
    json.manifests.forEach((entry, index) => result.manifests.push(descriptor(entry, `manifests[${index}]`).digest));
    if (typeof json.artifactType === 'string') result.artifactType = json.artifactType;
  }
  if (json.subject !== undefined) result.subject = descriptor(json.subject, 'subject').digest;
  if (json.annotations !== undefined) {
    if (!isStringRecord(json.annotations)) throw new RegistryError('MANIFEST_INVALID', 'annotations must map strings to strings');
    result.annotations = json.annotations;
  }
  return result;
}

function descriptor(value: unknown, where: string): { digest: string; foreign: boolean } {
  const entry = (value ?? {}) as DescriptorJson;
  if (typeof value !== 'object' || value === null) throw new RegistryError('MANIFEST_INVALID', `${where} must be a descriptor`);
  if (typeof entry.mediaType !== 'string') throw new RegistryError('MANIFEST_INVALID', `${where}.mediaType must be a string`);
  if (!parseDigest(entry.digest)) throw new RegistryError('MANIFEST_INVALID', `${where}.digest is not a valid digest`);
  if (typeof entry.size !== 'number' || !Number.isSafeInteger(entry.size) || entry.size < 0) {
    throw new RegistryError('MANIFEST_INVALID', `${where}.size must be a non-negative integer`);
  }
  const foreign = /nondistributable|foreign/.test(entry.mediaType) && Array.isArray(entry.urls);
  return { digest: entry.digest as string, foreign };
}

function isStringRecord(value: unknown): value is Record<string, string> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && Object.values(value).every((item) => typeof item === 'string');
}
