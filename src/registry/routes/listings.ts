import { parseDigest } from '../../core/digest.ts';
import { RegistryError } from '../errors.ts';
import type { Call, Handler } from '../http/context.ts';
import { MEDIA_TYPES } from '../manifest.ts';

const MAX_PAGE = 10_000;

function pageOf(call: Call): { n?: number; last?: string } {
  const { n, last } = call.query;
  const page: { n?: number; last?: string } = {};
  if (n !== undefined) {
    if (!/^\d{1,9}$/.test(n)) throw new RegistryError('UNSUPPORTED', 'n must be a non-negative integer');
    page.n = Math.min(Number(n), MAX_PAGE);
  }
  if (last !== undefined) page.last = last;
  return page;
}

/** Adds `Link: <…?n=&last=>; rel="next"` when a full page came back. */
function linkNext(call: Call, path: string, page: { n?: number }, items: string[]): void {
  if (page.n === undefined || page.n === 0 || items.length < page.n) return;
  const last = items[items.length - 1] as string;
  call.reply.header('link', `<${path}?n=${page.n}&last=${encodeURIComponent(last)}>; rel="next"`);
}

export const listTags: Handler = async (ctx, call) => {
  const page = pageOf(call);
  if (!(await ctx.metadata.repositoryExists(call.name))) throw new RegistryError('NAME_UNKNOWN', undefined, { detail: { name: call.name } });
  const tags = page.n === 0 ? [] : await ctx.metadata.listTags(call.name, page);
  linkNext(call, `/v2/${call.name}/tags/list`, page, tags);
  return call.reply.code(200).type('application/json').send({ name: call.name, tags });
};

export const listCatalog: Handler = async (ctx, call) => {
  const page = pageOf(call);
  const repositories = page.n === 0 ? [] : await ctx.metadata.listRepositories(page);
  linkNext(call, '/v2/_catalog', page, repositories);
  return call.reply.code(200).type('application/json').send({ repositories });
};

/** The referrers API: an image index of manifests whose subject is the digest. */
export const listReferrers: Handler = async (ctx, call) => {
  if (!parseDigest(call.reference)) throw new RegistryError('DIGEST_INVALID', `${call.reference} is not a valid digest`);
  const artifactType = call.query.artifactType;
  const manifests = await ctx.metadata.listReferrers(call.name, call.reference, artifactType);
  if (artifactType) call.reply.header('oci-filters-applied', 'artifactType');
  // Exactly the index media type: clients compare it without parameters.
  return call.reply
    .code(200)
    .header('content-type', MEDIA_TYPES.ociIndex)
    .send(Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_TYPES.ociIndex, manifests })));
};
