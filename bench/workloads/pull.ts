/**
 * Pull throughput: HEAD blob, GET manifest by tag and GET blob (answered with
 * a 307 to storage, never followed) at a fixed number of connections.
 *
 * The load comes from node:http with keep-alive. autocannon and wrk hang on
 * a HEAD response with a Content-Length (their parsers wait for a body), and
 * undici closes the connection after every HEAD; real clients do neither.
 */
import { createHash } from 'node:crypto';
import http from 'node:http';
import { request } from 'undici';
import { benchAgent, pushSmallBlob } from '../oci-push.ts';

const MANIFEST_TYPE = 'application/vnd.oci.image.manifest.v1+json';

export interface PullImage {
  repo: string;
  tag: string;
  layerDigest: string;
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
  return { repo, tag: 'latest', layerDigest: digestOf(layer) };
}

/** One request on a keep-alive agent; resolves to the status once the response has ended. */
function send(agent: http.Agent, url: URL, method: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { agent, method, headers }, (response) => {
      response.resume();
      response.on('end', () => resolve(response.statusCode ?? 0));
      response.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/**
 * `connections` closed loops over one keep-alive connection each, for
 * `seconds`: requests per second and latency percentiles of the answers
 * with the expected status; anything else counts as unexpected.
 */
async function load(url: string, options: { method: 'HEAD' | 'GET'; accept?: string; expected: number; connections: number; seconds: number }) {
  const target = new URL(url);
  const agent = new http.Agent({ keepAlive: true, maxSockets: options.connections });
  const latencies: number[] = [];
  let unexpected = 0;
  const headers: Record<string, string> = options.accept ? { accept: options.accept } : {};
  const began = performance.now();
  const deadline = began + options.seconds * 1000;
  const loop = async () => {
    while (performance.now() < deadline) {
      const sent = performance.now();
      try {
        if ((await send(agent, target, options.method, headers)) === options.expected) latencies.push(performance.now() - sent);
        else unexpected++;
      } catch {
        unexpected++;
      }
    }
  };
  await Promise.all(Array.from({ length: options.connections }, loop));
  const elapsed = (performance.now() - began) / 1000;
  agent.destroy();
  latencies.sort((a, b) => a - b);
  const percentile = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? Number.NaN;
  return { rps: latencies.length / elapsed, unexpected, p50: percentile(0.5), p99: percentile(0.99) };
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
