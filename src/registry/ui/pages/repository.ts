import type { ManifestSummary, TagOrder } from '../../../metadata/oci/browse.ts';
import { isTag } from '../../names.ts';
import type { UiContext, UiRequest } from '../context.ts';
import { html, href, type Html } from '../html.ts';
import { bytes, copyable, page, pager, shortDigest, when } from '../layout.ts';
import { PAGE_SIZE } from './home.ts';

/** A repository's tags, a page at a time, by name or newest push first. */
export async function repositoryPage(ui: UiContext, call: UiRequest, name: string, query: Record<string, string | undefined>): Promise<Html> {
  const order: TagOrder = query.sort === 'pushed' ? 'pushed' : 'name';
  const prefix = query.q && isTag(query.q) ? query.q : undefined;
  const at = query.at !== undefined && !Number.isNaN(Date.parse(query.at)) ? new Date(query.at).toISOString() : undefined;
  const after = query.after && isTag(query.after) ? { tag: query.after, ...(order === 'pushed' && at ? { pushedAt: at } : {}) } : undefined;
  const rows = await ui.browse.tags(name, { order, prefix, after, limit: PAGE_SIZE + 1 });
  const more = rows.length > PAGE_SIZE;
  const shown = rows.slice(0, PAGE_SIZE);
  const [summaries, tagCount] = await Promise.all([ui.browse.summaries(name, shown.map((row) => row.digest)), ui.browse.tagCount(name)]);
  const mayDelete = ui.registry.authorizer.mayDelete(call.identity, name) && (call.viewer.signedIn || !call.viewer.loginEnabled);
  const example = shown.find((row) => row.tag === 'latest') ?? shown[0];
  const reference = `${ui.pullHost}/${name}`;
  const last = shown.at(-1);
  const next = more && last ? href(['r', name], { sort: order === 'pushed' ? 'pushed' : undefined, q: prefix, after: last.tag, at: order === 'pushed' ? last.pushedAt : undefined }) : undefined;
  const first = after ? href(['r', name], { sort: order === 'pushed' ? 'pushed' : undefined, q: prefix }) : undefined;
  const sortLink = (value: TagOrder, label: string) =>
    value === order ? html`<strong>${label}</strong>` : html`<a href="${href(['r', name], { sort: value === 'pushed' ? 'pushed' : undefined, q: prefix })}">${label}</a>`;

  const body = html`<h1>${name}</h1>
<p class="muted">${tagCount.toLocaleString('en-US')} ${tagCount === 1 ? 'tag' : 'tags'}${mayDelete && call.viewer.loginEnabled ? html` · <a href="${href(['access'], { name })}">Access</a>` : ''}</p>
${example ? html`<div class="panel"><h2>Pull</h2>
${copyable('docker', `docker pull ${reference}:${example.tag}`)}
${copyable('podman', `podman pull ${reference}:${example.tag}`)}
${copyable('crane', `crane pull ${reference}:${example.tag} image.tar`)}
${copyable('by digest', `${reference}@${example.digest}`)}</div>` : ''}
<form method="get" action="${href(['r', name])}"><label for="q">Tags starting with</label> <input type="search" id="q" name="q" value="${prefix ?? ''}" maxlength="128">${order === 'pushed' ? html`<input type="hidden" name="sort" value="pushed">` : ''} <button type="submit">Filter</button>
<label class="visually-hidden" for="filter">Filter this page</label><input type="search" id="filter" data-filter="tags" placeholder="Filter this page" hidden></form>
<p>Sort: ${sortLink('name', 'by name')} · ${sortLink('pushed', 'newest first')}</p>
${shown.length === 0 ? html`<p>No tags${prefix ? html` start with <code>${prefix}</code>` : ''}.</p>` : html`<table id="tags"><thead><tr><th scope="col">Tag</th><th scope="col">Digest</th><th scope="col">Type</th><th scope="col" class="num">Size</th><th scope="col">Platforms</th><th scope="col">Pushed</th>${mayDelete ? html`<th scope="col"><span class="visually-hidden">Actions</span></th>` : ''}</tr></thead><tbody>
${shown.map((row) => {
  const summary = summaries.get(row.digest);
  return html`<tr><td><a href="${href(['r', name, '-', 'manifests', row.digest])}">${row.tag}</a></td><td><code title="${row.digest}">${shortDigest(row.digest)}</code></td><td><span class="mono">${typeLabel(row.mediaType, row.artifactType)}</span></td><td class="num">${summary?.bytes !== undefined ? bytes(summary.bytes) : ''}</td><td>${platforms(name, row.digest, summary)}</td><td>${when(row.pushedAt)}</td>${mayDelete ? html`<td><a href="${href(['r', name, '-', 'delete'], { tag: row.tag })}">Delete<span class="visually-hidden"> tag ${row.tag}</span></a></td>` : ''}</tr>`;
})}
</tbody></table>`}
${pager(next, first)}`;
  return page(call.viewer, name, body, { path: href(['r', name]) });
}

/** Image configs: what the referrers API reports as an image's artifact type when it sets none. */
const IMAGE_CONFIGS = new Set(['application/vnd.oci.image.config.v1+json', 'application/vnd.docker.container.image.v1+json']);

export function isImageConfig(mediaType: string | undefined): boolean {
  return mediaType !== undefined && IMAGE_CONFIGS.has(mediaType);
}

export function typeLabel(mediaType: string, artifactType?: string): string {
  if (artifactType && !IMAGE_CONFIGS.has(artifactType)) return short(artifactType);
  if (mediaType.endsWith('image.index.v1+json') || mediaType.endsWith('manifest.list.v2+json')) return 'index';
  if (mediaType.endsWith('image.manifest.v1+json') || mediaType.endsWith('manifest.v2+json')) return 'image';
  return short(mediaType);
}

/** Badges shown per row; the manifest page lists the rest. */
const BADGES = 12;

function platforms(repository: string, digest: string, summary: ManifestSummary | undefined): Html {
  if (!summary || summary.children === 0) return html``;
  const link = href(['r', repository, '-', 'manifests', digest]);
  if (!summary.platforms) return html`<a href="${link}">${summary.children.toLocaleString('en-US')} manifests</a>`;
  const shown = summary.platforms.filter((platform) => platform.os !== 'unknown');
  return html`${shown
    .slice(0, BADGES)
    .map((platform) => html`<a class="badge" href="${href(['r', repository, '-', 'manifests', platform.digest])}">${platformName(platform)}${platform.bytes !== undefined ? html` · ${bytes(platform.bytes)}` : ''}</a>`)}${shown.length > BADGES ? html`<a href="${link}">${shown.length - BADGES} more</a>` : ''}`;
}

/** Pushed names drawn in a cell: a media type or a platform field is never this long in earnest. */
const MAX_NAME_CHARS = 128;

function short(text: string): string {
  return text.length <= MAX_NAME_CHARS ? text : `${text.slice(0, MAX_NAME_CHARS)}…`;
}

export function platformName(platform: { os?: string; architecture?: string; variant?: string }): string {
  return short([platform.os ?? '?', platform.architecture ?? '?', platform.variant].filter(Boolean).join('/'));
}
