import type { AccessScope, describeAccess } from '../../auth/access.ts';
import type { UiRequest } from '../context.ts';
import { html, href, type Html } from '../html.ts';
import { page, when } from '../layout.ts';

/**
 * Who may pull and push a namespace or repository its owner names: its
 * visibility (set here, or inherited) and its grants, with forms to change
 * them. The same rules as `holdfast access` and `/auth/access`.
 */
export function accessPage(call: UiRequest, scope: AccessScope, shown: Awaited<ReturnType<typeof describeAccess>>, error?: string): Html {
  const form = (fields: Html, button: Html) =>
    html`<form method="post" action="/ui/access" class="inline"><input type="hidden" name="csrf" value="${call.viewer.csrf}"><input type="hidden" name="name" value="${scope.name}">${fields}${button}</form>`;
  const what = scope.kind === 'namespace' ? html`every repository under <code>${scope.name}/</code>` : html`<a href="${href(['r', scope.name])}">${scope.name}</a>`;
  const option = (value: string, label: string) => html`<option value="${value}"${shown.set === value ? html` selected` : ''}>${label}</option>`;
  const body = html`<h1>Access to <code>${scope.name}</code></h1>
${error ? html`<p class="error" role="alert">${error}</p>` : ''}
<div class="panel"><p>This is ${what}: <strong>${shown.effective}</strong>${shown.set === 'inherit' ? html` (inherited from ${scope.kind === 'repository' ? 'its namespace or ' : ''}the registry's default)` : ''}. A private repository exists only for you and those granted pull; to anyone else it answers as a name never pushed.</p>
${form(
  html`<input type="hidden" name="op" value="visibility"><label for="visibility">Visibility</label> <select id="visibility" name="visibility">${option('inherit', 'inherit')}${option('public', 'public')}${option('private', 'private')}</select> `,
  html`<button type="submit">Set</button>`,
)}</div>
<h2>Grants</h2>
${shown.grants.length === 0
  ? html`<p>Nobody else has been granted anything here.</p>`
  : html`<table><thead><tr><th scope="col">User</th><th scope="col">May</th><th scope="col">Since</th><th scope="col"><span class="visually-hidden">Revoke</span></th></tr></thead><tbody>
${shown.grants.map(
  (grant) =>
    html`<tr><td><code>${grant.user}</code></td><td>${grant.access === 'push' ? 'pull and push' : 'pull'}</td><td>${when(grant.createdAt)}</td><td>${form(html`<input type="hidden" name="op" value="revoke"><input type="hidden" name="user" value="${grant.user}">`, html`<button type="submit" class="danger" aria-label="Revoke ${grant.user}">Revoke</button>`)}</td></tr>`,
)}
</tbody></table>`}
${form(
  html`<input type="hidden" name="op" value="grant"><label for="grant-user">User or robot</label> <input type="text" id="grant-user" name="user" required maxlength="128"> <label for="grant-access">may</label> <select id="grant-access" name="access"><option value="pull">pull</option><option value="push">pull and push</option></select> `,
  html`<button type="submit">Grant</button>`,
)}
<p class="muted">Deleting stays yours. Grants and visibility take effect on every instance within a second.</p>`;
  return page(call.viewer, `Access to ${scope.name}`, body);
}
