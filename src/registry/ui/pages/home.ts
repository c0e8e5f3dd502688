import { RegistryError } from '../../errors.ts';
import { isRepositoryName, isTag } from '../../names.ts';
import type { UiContext, UiRequest } from '../context.ts';
import { html, href, type Html } from '../html.ts';
import { page, pager, when } from '../layout.ts';

export const PAGE_SIZE = 50;
/** Rows read per round while filling a page with repositories the viewer may see. */
const BATCH = 200;
const MAX_BATCHES = 5;
const MAX_QUERY = 128;

/** Repositories the viewer may pull, grouped by owner, with a name search and a tag search. */
export async function homePage(ui: UiContext, call: UiRequest, query: Record<string, string | undefined>): Promise<Html> {
  const q = (query.q ?? '').trim().slice(0, MAX_QUERY);
  const after = query.after;
  const visible: string[] = [];
  let scanned = after;
  let more = false;
  if (after !== undefined && !isRepositoryName(after)) throw new RegistryError('NAME_INVALID', 'That is not a page of this list.');
  // Private repositories the viewer may not see are left out by the query, so they never crowd out the ones shown.
  const filter = ui.registry.authorizer.catalogFilter(call.identity);
  // The next page starts after the last repository shown, never after one the viewer may not see (its name would be in the link).
  fill: for (let batch = 0; batch < MAX_BATCHES; batch++) {
    const names = await ui.browse.repositories({ query: q || undefined, after: scanned, limit: BATCH, ...(filter ? { filter } : {}) });
    for (const name of names) {
      if (visible.length === PAGE_SIZE) {
        more = true;
        break fill;
      }
      scanned = name;
      if (ui.registry.authorizer.mayPull(call.identity, name)) visible.push(name);
    }
    if (names.length < BATCH) break;
  }
  const cursor = visible.at(-1);
  const pushed = await ui.browse.lastPushed(visible);
  const groups = new Map<string, string[]>();
  for (const name of visible) {
    const namespace = name.includes('/') ? (name.split('/')[0] as string) : '';
    groups.set(namespace, [...(groups.get(namespace) ?? []), name]);
  }
  const tagHits = q && isTag(q) && !after ? (await ui.browse.searchTags({ prefix: q, limit: PAGE_SIZE, ...(filter ? { filter } : {}) })).filter((hit) => ui.registry.authorizer.mayPull(call.identity, hit.repository)) : [];

  const sections = [...groups.entries()].map(([namespace, names]) => {
    const owner = namespace ? ui.registry.authorizer.ownerOf(namespace) : undefined;
    const heading = namespace
      ? html`<h2>${namespace}${owner ? html` <span class="muted mono">${owner.did}</span>` : ''}</h2>`
      : html`<h2>Top-level repositories</h2>`;
    return html`<section>${heading}<table><thead><tr><th scope="col">Repository</th><th scope="col">Last push</th></tr></thead><tbody>
${names.map((name) => html`<tr><td><a href="${href(['r', name])}">${name}</a></td><td>${when(pushed.get(name))}</td></tr>`)}
</tbody></table></section>`;
  });
  const empty =
    visible.length === 0
      ? html`<p>${q ? html`No repository you may see has <code>${q}</code> in its name.` : call.viewer.signedIn || !call.viewer.loginEnabled ? 'No repositories yet.' : html`No repositories you may see. <a href="${href(['login'], { next: '/ui/' })}">Log in</a> to see more.`}</p>`
      : '';
  const tagSection =
    tagHits.length > 0
      ? html`<section><h2>Tags starting with <code>${q}</code></h2><table><thead><tr><th scope="col">Tag</th><th scope="col">Repository</th><th scope="col">Pushed</th></tr></thead><tbody>
${tagHits.map((hit) => html`<tr><td><a href="${href(['r', hit.repository, '-', 'manifests', hit.digest])}">${hit.tag}</a></td><td><a href="${href(['r', hit.repository])}">${hit.repository}</a></td><td>${when(hit.pushedAt)}</td></tr>`)}
</tbody></table></section>`
      : '';
  const next = more && cursor ? href([''], { q, after: cursor }) : undefined;
  const first = after ? href([''], { q }) : undefined;
  return page(
    call.viewer,
    q ? `Search: ${q}` : 'Repositories',
    html`<h1>Repositories</h1>
<form method="get" action="/ui/" role="search"><label for="q">Search repositories and tags</label> <input type="search" id="q" name="q" value="${q}" maxlength="${MAX_QUERY}"> <button type="submit">Search</button></form>
${tagSection}${sections}${empty}${pager(next, first)}`,
    { path: '/ui/' },
  );
}
