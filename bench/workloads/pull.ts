/**
 * Pull throughput: HEAD blob, GET manifest by tag and GET blob (answered with
 * a 307 to storage, never followed) at a fixed number of connections, from
 * the closed-loop keep-alive loader.
 */
import { createHash } from 'node:crypto';
import { request } from 'undici';
import { benchAgent, pushSmallBlob } from '../oci-push.ts';
import { closedLoop } from './closed-loop.ts';

const MANIFEST_TYPE = 'application/vnd.oci.image.manifest.v1+json';

export interface PullImage {
  repo: string;
  tag: string;
  layerDigest: string;
  config: { digest: string; size: number };
  layer: { digest: string; size: number };
}

export interface PullFigures {
  headBlobRps: number;
  getManifestRps: number;
  getBlobRps: number;
  getBlobP50Ms: number;
  getBlobP99Ms: number;
  /** Requests that failed or were answered with another status than expected. */
  unexpected: number;
}

function digestOf(bytes: Buffer): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

async function expectStatus(url: string, options: Parameters<typeof request>[1], status: number): Promise<void> {
  const response = await request(url, { dispatcher: benchAgent, ...options });
  const text = await response.body.text();
  if (response.statusCode !== status) throw new Error(`${options?.method} ${url}: ${response.statusCode} ${text.slice(0, 200)}`);
}

/** Pushes a one-layer image to pull: two blobs and a tagged manifest. */
export async function pushPullImage(baseUrl: string, repo: string): Promise<PullImage> {
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }));
  const layer = Buffer.from(`holdfast pull benchmark layer ${Date.now()} ${Math.random()}`.padEnd(4096, '.'));
  for (const blob of [config, layer]) await pushSmallBlob(baseUrl, repo, blob, digestOf(blob));
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MANIFEST_TYPE,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: digestOf(config), size: config.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: digestOf(layer), size: layer.length }],
    }),
  );
  await expectStatus(`${baseUrl}/v2/${repo}/manifests/latest`, { method: 'PUT', body: manifest, headers: { 'content-type': MANIFEST_TYPE } }, 201);
  return { repo, tag: 'latest', layerDigest: digestOf(layer), config: { digest: digestOf(config), size: config.length }, layer: { digest: digestOf(layer), size: layer.length } };
}

/** `connections` closed loops for `seconds` at one URL. */
function load(url: string, options: { method: 'HEAD' | 'GET'; accept?: string; expected: number; connections: number; seconds: number }) {
  const request = { method: options.method, url: new URL(url), headers: options.accept ? { accept: options.accept } : ({} as Record<string, string>) };
  return closedLoop(() => request, { expected: options.expected, connections: options.connections, seconds: options.seconds });
}

/** One request of each kind first: the figures only count if the answers are right. */
async function preflight(blobUrl: string, manifestUrl: string, headStatus: number): Promise<void> {
  await expectStatus(blobUrl, { method: 'HEAD' }, headStatus);
  await expectStatus(manifestUrl, { method: 'GET', headers: { accept: MANIFEST_TYPE } }, 200);
  await expectStatus(blobUrl, { method: 'GET' }, 307);
}

/**
 * `headStatus`: holdfast answers HEAD blob itself (200); distribution with
 * redirects on sends HEAD to storage too (307).
 */
export async function measurePull(baseUrl: string, image: PullImage, options: { connections: number; seconds: number; headStatus: number }): Promise<PullFigures> {
  const blobUrl = `${baseUrl}/v2/${image.repo}/blobs/${image.layerDigest}`;
  const manifestUrl = `${baseUrl}/v2/${image.repo}/manifests/${image.tag}`;
  await preflight(blobUrl, manifestUrl, options.headStatus);
  const head = await load(blobUrl, { method: 'HEAD', expected: options.headStatus, ...options });
  const manifest = await load(manifestUrl, { method: 'GET', accept: MANIFEST_TYPE, expected: 200, ...options });
  const blob = await load(blobUrl, { method: 'GET', expected: 307, ...options });
  return {
    headBlobRps: head.rps,
    getManifestRps: manifest.rps,
    getBlobRps: blob.rps,
    getBlobP50Ms: blob.p50,
    getBlobP99Ms: blob.p99,
    unexpected: head.unexpected + manifest.unexpected + blob.unexpected,
  };
}
