import { formatBytes } from '../../../core/byte-size.ts';
import { RegistryError } from '../../errors.ts';
import { isRepositoryName } from '../../names.ts';
import type { UiContext, UiRequest } from '../context.ts';
import { html, href, type Html } from '../html.ts';
import { bytes, page, pager, when } from '../layout.ts';
import { PAGE_SIZE } from './home.ts';

/**
 * The signed-in user's storage: unique bytes in their namespace, bytes per
 * repository, the holds, and what the last GC pass freed. With
 * authentication off there is one user, so the page covers the registry.
 */
export async function storagePage(ui: UiContext, call: UiRequest, query: Record<string, string | undefined>): Promise<Html> {
  const namespace = call.identity.handle;
  const after = query.after;
  const [total, usage, lastPass] = await Promise.all([
    ui.browse.uniqueBytes(namespace),
    ui.browse.repositoryUsage(namespace, { after, limit: PAGE_SIZE + 1 }),
    ui.gc.lastPass(),
  ]);
  if (after !== undefined && !isRepositoryName(after)) throw new RegistryError('NAME_INVALID', 'That is not a page of this list.');
  const read = usage.slice(0, PAGE_SIZE);
  const shown = read.filter((row) => ui.registry.authorizer.mayPull(call.identity, row.repository));
  // The cursor is the last row read: the viewer's own namespace, so its names are theirs to see.
  const next = usage.length > PAGE_SIZE ? href(['storage'], { after: read.at(-1)?.repository }) : undefined;
  const quota = namespace ? ui.registry.namespaceQuotas.limitOf(namespace) : undefined;
  const gc = ui.gcSettings;

  const body = html`<h1>Storage${namespace ? html` of <code>${namespace}/</code>` : ' of this registry'}</h1>
<div class="panel"><p><strong>${bytes(total.bytes)}</strong> in ${total.blobs.toLocaleString('en-US')} unique blobs${namespace ? html` across the repositories under <code>${namespace}/</code>` : ''}.${quota ? html` The namespace quota is ${formatBytes(quota.bytes)} (${Math.min(100, Math.round((total.bytes / Math.max(1, quota.bytes)) * 100))} % used).` : ''}</p>
${namespace && call.viewer.loginEnabled ? html`<p><a href="${href(['access'], { name: namespace })}">Who may pull and push under <code>${namespace}/</code></a></p>` : ''}
<p class="muted">Each blob counts once in this total. The table counts a blob once in every repository that links it, so when repositories share layers their rows add up to more than the total.</p></div>
<h2>Per repository</h2>
${shown.length === 0 ? html`<p>No blobs stored yet.</p>` : html`<table><thead><tr><th scope="col">Repository</th><th scope="col" class="num">Blobs</th><th scope="col" class="num">Bytes</th></tr></thead><tbody>
${shown.map((row) => html`<tr><td><a href="${href(['r', row.repository])}">${row.repository}</a></td><td class="num">${row.blobs.toLocaleString('en-US')}</td><td class="num">${bytes(row.bytes)}</td></tr>`)}
</tbody></table>`}
${pager(next, after ? href(['storage']) : undefined)}
<h2>Holds</h2>
${ui.holds.length === 0 ? html`<p class="muted">This registry stores blobs through a storage plugin, not a hold.</p>` : html`<ul>${ui.holds.map((hold) => html`<li><code>${hold.url}</code>${hold.did ? html` <span class="muted mono">${hold.did}</span>` : ''}</li>`)}</ul>`}
<h2>Garbage collection</h2>
${gc.enabled
  ? html`<p>Unreferenced blobs are deleted after ${hours(gc.graceSeconds)}; ${gc.intervalSeconds > 0 ? html`a pass runs every ${hours(gc.intervalSeconds)}.` : html`passes run only from <code>holdfast gc</code>.`}</p>`
  : html`<p>Garbage collection is off on this registry: bytes nothing references stay in storage until an operator runs it.</p>`}
${lastPass
  ? html`<p>Last pass: ${when(lastPass.startedAt)}, ${lastPass.seconds.toFixed(1)} s; freed ${bytes(lastPass.deletedBytes)} in ${lastPass.deletedBlobs} blobs and deleted ${lastPass.deletedManifests} manifests; ${lastPass.waiting} candidates wait out the grace period.</p>`
  : html`<p class="muted">No pass has finished yet.</p>`}`;
  return page(call.viewer, 'Storage', body, { path: '/ui/storage' });
}

export function hours(seconds: number): string {
  if (seconds % 3600 === 0) return `${seconds / 3600} ${seconds === 3600 ? 'hour' : 'hours'}`;
  if (seconds % 60 === 0) return `${seconds / 60} minutes`;
  return `${seconds} seconds`;
}
