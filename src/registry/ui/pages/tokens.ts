import { describeToken, TOKEN_ACTIONS, TOKEN_LIMITS, tokensOf } from '../../auth/access-tokens.ts';
import type { UiContext, UiRequest } from '../context.ts';
import { html, type Html } from '../html.ts';
import { copyable, page, when } from '../layout.ts';

/** Tokens shown per holder (the user and each robot); the API lists the same. */
const SHOWN_PER_HOLDER = 200;

export interface TokensPageNotice {
  /** A token just created: its secret, shown this once. */
  created?: { secret: string; owner: string };
  error?: string;
}

/**
 * The signed-in user's access tokens and robot accounts: what each may do,
 * when it expires and was last used; forms to create and revoke them. A new
 * token's secret is shown on the answer to its form and never again.
 */
export async function tokensPage(ui: UiContext, call: UiRequest, accounts: NonNullable<UiContext['accounts']>, notice: TokensPageNotice = {}): Promise<Html> {
  const username = call.viewer.username as string;
  const [robots, tokens] = await Promise.all([accounts.store.robots(username), tokensOf(accounts.store, username, SHOWN_PER_HOLDER)]);
  const now = new Date();

  const created = notice.created
    ? html`<div class="panel" role="status"><p><strong>Copy this token now: it is not shown again.</strong> Use it as the password of <code>${notice.created.owner}</code>.</p>
${copyable('Token', notice.created.secret)}
${copyable('Log in with it', `echo "$TOKEN" | docker login ${ui.pullHost} --username ${notice.created.owner} --password-stdin`)}</div>`
    : '';
  const error = notice.error ? html`<p class="error" role="alert">${notice.error}</p>` : '';
  const rows = tokens.map((token) => {
    const shown = describeToken(token, now);
    return html`<tr><td>${shown.name}</td><td><code>${shown.owner}</code></td><td>${shown.repositories.map((pattern) => html`<code>${pattern}</code> `)}</td><td>${shown.actions.join(', ')}</td><td>${when(shown.expiresAt)}</td><td>${shown.lastUsedAt ? when(shown.lastUsedAt) : html`<span class="muted">never</span>`}</td><td>${shown.state}</td>
<td>${shown.state === 'live' ? html`<form method="post" action="/ui/tokens/revoke"><input type="hidden" name="csrf" value="${call.viewer.csrf}"><input type="hidden" name="id" value="${shown.id}"><button type="submit" class="danger" aria-label="Revoke ${shown.name}">Revoke</button></form>` : ''}</td></tr>`;
  });

  const body = html`<h1>Access tokens</h1>
<p>A token is a password for CI and scripts, limited to the repositories and actions you give it and never more than its user may do. Revoking one takes effect on every instance within a second.</p>
${created}${error}
${tokens.length === 0 ? html`<p>No tokens yet.</p>` : html`<table><thead><tr><th scope="col">Name</th><th scope="col">For</th><th scope="col">Repositories</th><th scope="col">Actions</th><th scope="col">Expires</th><th scope="col">Last used</th><th scope="col">State</th><th scope="col"><span class="visually-hidden">Revoke</span></th></tr></thead><tbody>
${rows}
</tbody></table>`}
<h2>New token</h2>
<form method="post" action="/ui/tokens">
<input type="hidden" name="csrf" value="${call.viewer.csrf}">
<p><label for="token-name">Name</label><br><input type="text" id="token-name" name="name" required maxlength="${TOKEN_LIMITS.maxNameLength}" placeholder="ci deploy"></p>
<p><label for="token-repositories">Repositories</label><br><input type="text" id="token-repositories" name="repositories" required maxlength="2048" placeholder="${username}/app ${username}/*"><br><span class="muted">Names separated by spaces; <code>*</code> is one path part, <code>**</code> any number.</span></p>
<fieldset><legend>Actions</legend>${TOKEN_ACTIONS.map((action) => html`<label><input type="checkbox" name="actions" value="${action}"${action === 'pull' ? html` checked` : ''}> ${action}</label> `)}</fieldset>
<p><label for="token-days">Expires in days</label><br><input type="number" id="token-days" name="days" min="1" max="${TOKEN_LIMITS.maxDays}" value="${TOKEN_LIMITS.defaultDays}" required></p>
<p><label for="token-for">For</label><br><select id="token-for" name="for"><option value="">${username} (you)</option>${robots.map((robot) => html`<option value="${robot.username}">${robot.username} (robot)</option>`)}</select></p>
<p><button type="submit">Create token</button></p>
</form>
<h2>Robot accounts</h2>
<p>A robot account (<code>${username}+name</code>) has no password and may do only what owners grant it (<code>holdfast access grant</code>, or <code>/auth/access</code>); it signs in with its tokens.</p>
${robots.length === 0 ? html`<p>No robot accounts.</p>` : html`<ul>${robots.map((robot) => html`<li><code>${robot.username}</code> <form method="post" action="/ui/robots/delete" class="inline"><input type="hidden" name="csrf" value="${call.viewer.csrf}"><input type="hidden" name="name" value="${robot.username}"><button type="submit" class="danger" aria-label="Delete ${robot.username}">Delete</button></form></li>`)}</ul>`}
<form method="post" action="/ui/robots">
<input type="hidden" name="csrf" value="${call.viewer.csrf}">
<p><label for="robot-name">New robot name</label><br><input type="text" id="robot-name" name="name" required maxlength="64" pattern="[a-z0-9][a-z0-9._\\-]*" placeholder="ci"></p>
<p><button type="submit">Create robot account</button></p>
</form>`;
  return page(call.viewer, 'Access tokens', body, { path: '/ui/tokens' });
}
