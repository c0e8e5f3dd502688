import type { UiContext, UiRequest } from '../context.ts';
import { html, href, type Html } from '../html.ts';
import { page } from '../layout.ts';
import { hours } from './storage.ts';

export function loginPage(call: UiRequest, next: string, error?: string): Html {
  return page(
    call.viewer,
    'Log in',
    html`<h1>Log in</h1>
${error ? html`<p class="error" role="alert">${error}</p>` : ''}
<form method="post" action="/ui/login">
<input type="hidden" name="csrf" value="${call.viewer.csrf}">
<input type="hidden" name="next" value="${next}">
<p><label for="username">User name</label><br><input type="text" id="username" name="username" autocomplete="username" required maxlength="128"></p>
<p><label for="password">Password</label><br><input type="password" id="password" name="password" autocomplete="current-password" required maxlength="1024"></p>
<p><button type="submit">Log in</button></p>
</form>`,
  );
}

/** What deleting a tag or a manifest does, said before it is done. */
export function deletePage(ui: UiContext, call: UiRequest, repository: string, target: { tag: string } | { digest: string; tags: string[] }): Html {
  const gc = ui.gcSettings;
  const collection = gc.enabled
    ? html`Garbage collection deletes what nothing references any more after ${hours(gc.graceSeconds)} unreferenced${gc.intervalSeconds > 0 ? html`, on a pass every ${hours(gc.intervalSeconds)}` : ''}.`
    : html`Garbage collection is off on this registry, so the bytes stay in storage until an operator runs it.`;
  const what =
    'tag' in target
      ? html`<p>Delete the tag <code>${target.tag}</code> from <code>${repository}</code>? The manifest it points at stays, reachable by digest; if no other tag or index holds it, it becomes untagged. ${collection}</p>`
      : html`<p>Delete the manifest <code>${target.digest}</code> from <code>${repository}</code>${target.tags.length > 0 ? html`, and with it the tags ${target.tags.map((tag) => html`<code>${tag}</code> `)}` : ''}? Pulls by digest will fail at once. Its layers stay while another manifest uses them; those no manifest uses any more become unreferenced. ${collection}</p>`;
  return page(
    call.viewer,
    'Delete',
    html`<h1>Delete</h1>${what}
<form method="post" action="${href(['r', repository, '-', 'delete'])}">
<input type="hidden" name="csrf" value="${call.viewer.csrf}">
${'tag' in target ? html`<input type="hidden" name="tag" value="${target.tag}">` : html`<input type="hidden" name="digest" value="${target.digest}">`}
<button type="submit" class="danger">Delete</button> <a href="${href(['r', repository])}">Cancel</a>
</form>`,
  );
}
