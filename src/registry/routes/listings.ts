import { parseDigest } from '../../core/digest.ts';
import { RegistryError } from '../errors.ts';
import type { Call, Handler, RegistryContext } from '../http/context.ts';
import { MEDIA_TYPES } from '../manifest.ts';

/** `?n=&last=`, with the registry's default page size when `n` is absent and its maximum above. */
function pageOf(ctx: RegistryContext, call: Call): { n: number; last?: string } {
  const { n, last } = call.query;
  const { defaultPageSize, maxPageSize } = ctx.limits;
  if (n !== undefined && !/^\d{1,9}$/.test(n)) throw new RegistryError('UNSUPPORTED', 'n must be a non-negative integer');
  // `last` is compared as text: any string sorts somewhere, but PostgreSQL refuses a NUL in text.
  if (last !== undefined && (last.length > 256 || [...last].some((char) => char < ' '))) throw new RegistryError('UNSUPPORTED', 'last must be a tag or repository name');
  const page: { n: number; last?: string } = { n: n === undefined ? defaultPageSize : Math.min(Number(n), maxPageSize) };
  if (last !== undefined) page.last = last;
  return page;
}

/**
 * One page, asking the store for one item more than it returns: that item
 * only tells whether `Link: <…?n=&last=>; rel="next"` is due.
 */
async function listPage(call: Call, path: string, page: { n: number; last?: string }, list: (page: { n: number; last?: string }) => Promise<string[]>): Promise<string[]> {
  if (page.n === 0) return [];
  const items = await list({ ...page, n: page.n + 1 });
  if (items.length <= page.n) return items;
  items.length = page.n;
  const last = items[items.length - 1] as string;
  call.reply.header('link', `<${path}?n=${page.n}&last=${encodeURIComponent(last)}>; rel="next"`);
  return items;
}

export const listTags: Handler = async (ctx, call) => {
  const page = pageOf(ctx, call);
  if (!(await ctx.metadata.repositoryExists(call.name))) throw new RegistryError('NAME_UNKNOWN', undefined, { detail: { name: call.name } });
  const path = `/v2/${call.name}/tags/list`;
  const tags = await listPage(call, path, page, (query) => ctx.metadata.listTags(call.name, query));
  return call.reply.code(200).type('application/json').send({ name: call.name, tags });
};

export const listCatalog: Handler = async (ctx, call) => {
  const page = pageOf(ctx, call);
  const filter = ctx.authorizer.catalogFilter(call.identity);
  const repositories = await listPage(call, '/v2/_catalog', page, (query) => ctx.metadata.listRepositories(query, filter));
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
