/**
 * The per-request latencies of a grown registry, at 16 connections through
 * the closed-loop loader: reads by tag and digest, an upload POST, a
 * manifest PUT adding a tag to a repository of N tags, and the first and a
 * middle page of the tag list and of the catalog.
 */
import type { PullImage } from '../workloads/pull.ts';
import { closedLoop, type LoadRequest } from '../workloads/closed-loop.ts';
import { median } from '../measure.ts';
import { APP, BIG, repositoryName, tagName } from './fill.ts';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
/**
 * Items a list page asks for. The registry's default page (1,000) would make
 * the middle page at N = 10³ half as long as at every larger N (only 500
 * names follow the middle), and the curve would show the page size, not N.
 */
const PAGE = 100;

export const REQUEST_KINDS = [
  'manifestGet',
  'manifestHead',
  'blobHead',
  'uploadPost',
  'manifestPut',
  'tagsFirstPage',
  'tagsMiddlePage',
  'catalogFirstPage',
  'catalogMiddlePage',
] as const;
export type RequestKind = (typeof REQUEST_KINDS)[number];

export const REQUEST_LABELS: Record<RequestKind, string> = {
  manifestGet: 'manifest GET by tag',
  manifestHead: 'manifest HEAD by tag',
  blobHead: 'blob HEAD',
  uploadPost: 'upload POST, N uploads open',
  manifestPut: 'manifest PUT, new tag, N tags',
  tagsFirstPage: `tag list, first page of ${PAGE}`,
  tagsMiddlePage: `tag list, middle page of ${PAGE}`,
  catalogFirstPage: `catalog, first page of ${PAGE}`,
  catalogMiddlePage: `catalog, middle page of ${PAGE}`,
};

export interface RequestFigure {
  p50Ms: number;
  p99Ms: number;
  rps: number;
  requests: number;
  unexpected: number;
}

export interface Images {
  app: PullImage;
  big: PullImage;
}

let putCounter = 0;

function plan(baseUrl: string, n: number, images: Images): Record<RequestKind, { next: (i: number) => LoadRequest; expected: number }> {
  const url = (pathAndQuery: string) => new URL(`${baseUrl}${pathAndQuery}`);
  const manifest = url(`/v2/${APP}/manifests/${images.app.tag}`);
  const fixed = (method: string, target: URL, headers: Record<string, string> = {}) => {
    const request = { method, url: target, headers };
    return () => request;
  };
  const { config, layer } = images.big;
  return {
    manifestGet: { next: fixed('GET', manifest, { accept: OCI_MANIFEST }), expected: 200 },
    manifestHead: { next: fixed('HEAD', manifest, { accept: OCI_MANIFEST }), expected: 200 },
    blobHead: { next: fixed('HEAD', url(`/v2/${APP}/blobs/${images.app.layerDigest}`)), expected: 200 },
    uploadPost: { next: fixed('POST', url(`/v2/${APP}/blobs/uploads/`), { 'content-length': '0' }), expected: 202 },
    manifestPut: {
      next: () => {
        const k = putCounter++;
        const body = Buffer.from(
          JSON.stringify({
            schemaVersion: 2,
            mediaType: OCI_MANIFEST,
            config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config.digest, size: config.size },
            layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layer.digest, size: layer.size }],
            annotations: { 'dev.holdfast.bench.put': String(k) },
          }),
        );
        return { method: 'PUT', url: url(`/v2/${BIG}/manifests/put${String(k).padStart(7, '0')}`), headers: { 'content-type': OCI_MANIFEST }, body };
      },
      expected: 201,
    },
    tagsFirstPage: { next: fixed('GET', url(`/v2/${BIG}/tags/list?n=${PAGE}`)), expected: 200 },
    tagsMiddlePage: { next: fixed('GET', url(`/v2/${BIG}/tags/list?n=${PAGE}&last=${tagName(Math.floor(n / 2))}`)), expected: 200 },
    catalogFirstPage: { next: fixed('GET', url(`/v2/_catalog?n=${PAGE}`)), expected: 200 },
    catalogMiddlePage: { next: fixed('GET', url(`/v2/_catalog?n=${PAGE}&last=${encodeURIComponent(repositoryName(Math.floor(n / 2)))}`)), expected: 200 },
  };
}

/**
 * Each kind in turn, `rounds` times: `requests` timed after `warmup`
 * (manifest PUTs: at most 1,000 a round, each adding a tag). Median p50 and
 * p99 over the rounds; any unexpected answer fails the run.
 */
export async function measureRequests(
  baseUrl: string,
  n: number,
  images: Images,
  options: { connections: number; requests: number; warmup: number; rounds: number },
): Promise<Record<RequestKind, RequestFigure>> {
  const kinds = plan(baseUrl, n, images);
  const result = {} as Record<RequestKind, RequestFigure>;
  for (const kind of REQUEST_KINDS) {
    const { next, expected } = kinds[kind];
    const rounds = [];
    for (let round = 0; round < options.rounds; round++) {
      const requests = kind === 'manifestPut' ? Math.min(1000, options.requests) : options.requests;
      const figures = await closedLoop(next, { expected, connections: options.connections, warmup: options.warmup, requests });
      if (figures.unexpected > 0) throw new Error(`${kind} at N=${n}: ${figures.unexpected} unexpected answers, first: ${figures.firstUnexpected}`);
      rounds.push(figures);
    }
    result[kind] = {
      p50Ms: median(rounds.map((r) => r.p50)),
      p99Ms: median(rounds.map((r) => r.p99)),
      rps: median(rounds.map((r) => r.rps)),
      requests: rounds.reduce((sum, r) => sum + r.requests, 0),
      unexpected: 0,
    };
  }
  return result;
}
