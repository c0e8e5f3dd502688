import { createHash } from 'node:crypto';
import { parseDigest } from '../../core/digest.ts';
import { RegistryError } from '../errors.ts';
import { readBody } from '../http/body.ts';
import { actorOf, type Call, type Handler, type RegistryContext } from '../http/context.ts';
import type { ChangeCause } from '../../metadata/oci/types.ts';
import { MAX_MANIFEST_BYTES, parseManifest } from '../manifest.ts';
import { isTag } from '../names.ts';

/** The digest a reference names: itself, or what its tag points at. */
async function resolve(ctx: RegistryContext, call: Call): Promise<string> {
  const reference = call.reference;
  if (parseDigest(reference)) return reference;
  if (!isTag(reference)) throw new RegistryError('MANIFEST_UNKNOWN', `${reference} is neither a tag nor a digest`);
  const digest = await ctx.metadata.resolveTag(call.name, reference);
  if (!digest) throw new RegistryError('MANIFEST_UNKNOWN', undefined, { detail: { tag: reference } });
  return digest;
}

async function serveManifest(ctx: RegistryContext, call: Call, withBody: boolean) {
  const digest = await resolve(ctx, call);
  const manifest = await ctx.metadata.getManifest(call.name, digest);
  if (!manifest) throw new RegistryError('MANIFEST_UNKNOWN', undefined, { detail: { digest } });
  if (withBody) {
    const tag = digest === call.reference ? {} : { tag: call.reference };
    ctx.events?.pulled({ kind: 'manifest.pulled', repository: call.name, digest, mediaType: manifest.mediaType, size: manifest.content.length, ...tag }, { actor: actorOf(call.identity) });
  }
  call.reply
    .code(200)
    .header('content-type', manifest.mediaType)
    .header('docker-content-digest', manifest.digest)
    .header('content-length', String(manifest.content.length));
  return withBody ? call.reply.send(manifest.content) : call.reply.send();
}

export const getManifest: Handler = (ctx, call) => serveManifest(ctx, call, true);
export const headManifest: Handler = (ctx, call) => serveManifest(ctx, call, false);

/** PUT: validate, check every referenced blob and manifest exists here, store, tag. */
export const putManifest: Handler = async (ctx, call) => {
  const reference = call.reference;
  const byDigest = parseDigest(reference);
  if (!byDigest && !isTag(reference)) throw new RegistryError('MANIFEST_INVALID', `${reference} is neither a tag nor a digest`);
  const content = await readBody(call.request.raw, MAX_MANIFEST_BYTES, () => new RegistryError('MANIFEST_TOO_LARGE'));
  const parsed = parseManifest(content, call.request.headers['content-type']);
  let digest = parsed.digest;
  if (byDigest) {
    const actual = `${byDigest.algorithm}:${createHash(byDigest.algorithm).update(content).digest('hex')}`;
    if (actual !== byDigest.value) throw new RegistryError('DIGEST_INVALID', `the manifest hashes to ${actual}, not ${byDigest.value}`);
    digest = byDigest.value;
  }
  for (const blob of parsed.blobs) {
    if (!(await ctx.metadata.getBlob(call.name, blob))) {
      throw new RegistryError('MANIFEST_BLOB_UNKNOWN', `blob ${blob} is not in ${call.name}`, { detail: { digest: blob } });
    }
  }
  for (const child of parsed.manifests) {
    if (!(await ctx.metadata.getManifest(call.name, child))) {
      throw new RegistryError('MANIFEST_BLOB_UNKNOWN', `manifest ${child} is not in ${call.name}`, { detail: { digest: child } });
    }
  }
  await ctx.metadata.putManifest(
    {
      repository: call.name,
      digest,
      mediaType: parsed.mediaType,
      content,
      ...(parsed.subject ? { subject: parsed.subject } : {}),
      ...(parsed.artifactType ? { artifactType: parsed.artifactType } : {}),
      ...(parsed.annotations ? { annotations: parsed.annotations } : {}),
      blobs: parsed.blobs,
      manifests: parsed.manifests,
    },
    byDigest ? undefined : reference,
    { maxTags: ctx.limits.maxTagsPerRepository, immutable: ctx.immutableTags.in(call.name), cause: { actor: actorOf(call.identity), reason: 'api' } },
  );
  call.reply.code(201).header('location', `/v2/${call.name}/manifests/${digest}`).header('docker-content-digest', digest).header('content-length', '0');
  if (parsed.subject) call.reply.header('oci-subject', parsed.subject);
  return call.reply.send();
};

/** DELETE by digest removes the manifest and its tags; by tag, only the tag. */
export const deleteManifest: Handler = async (ctx, call) => {
  await deleteReference(ctx, call.name, call.reference, { actor: actorOf(call.identity), reason: 'api' });
  return call.reply.code(202).header('content-length', '0').send();
};

/**
 * Deletes a manifest (by digest) or a tag, under the repository's immutable
 * tags; MANIFEST_UNKNOWN when there is none. The API and the web pages both
 * delete through here; the caller has checked push rights.
 */
export async function deleteReference(ctx: RegistryContext, repository: string, reference: string, cause: ChangeCause): Promise<void> {
  const immutable = ctx.immutableTags.in(repository);
  const options = immutable ? { immutable, cause } : { cause };
  if (parseDigest(reference)) {
    if (!(await ctx.metadata.deleteManifest(repository, reference, options))) throw new RegistryError('MANIFEST_UNKNOWN');
  } else {
    if (!isTag(reference) || !(await ctx.metadata.deleteTag(repository, reference, options))) throw new RegistryError('MANIFEST_UNKNOWN');
  }
}
