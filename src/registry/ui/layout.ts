import { formatBytes } from '../../core/byte-size.ts';
import { ASSETS } from './assets.ts';
import { html, href, type Html, type Renderable } from './html.ts';

/** Who is looking, and what the page needs to draw its header. */
export interface PageViewer {
  did: string;
  username?: string;
  signedIn: boolean;
  /** Whether this registry has logins at all (authentication on). */
  loginEnabled: boolean;
  csrf: string;
}

/** Longest pushed string shown whole; the rest is counted, not drawn. */
export const MAX_SHOWN_CHARS = 2048;

export function page(viewer: PageViewer, title: string, body: Renderable, options: { path?: string } = {}): Html {
  const account = viewer.signedIn
    ? html`<span class="muted">${viewer.username}</span>
        <form class="inline" method="post" action="/ui/logout"><input type="hidden" name="csrf" value="${viewer.csrf}"><button type="submit">Log out</button></form>`
    : viewer.loginEnabled
      ? html`<a href="${href(['login'], { next: options.path })}">Log in</a>`
      : html`<span class="muted" title="authentication is off">local</span>`;
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · Holdfast</title>
<link rel="stylesheet" href="/ui/static/${ASSETS.stylesheet.name}">
<script src="/ui/static/${ASSETS.script.name}" defer></script>
</head>
<body>
<header class="top">
<a class="brand" href="/ui/">Holdfast</a>
<nav aria-label="Main"><a href="/ui/">Repositories</a>${viewer.signedIn || !viewer.loginEnabled ? html`<a href="/ui/storage">Storage</a>` : ''}${viewer.signedIn && viewer.loginEnabled ? html`<a href="/ui/tokens">Tokens</a>` : ''}</nav>
${account}
</header>
<main id="main">
${body}
</main>
</body>
</html>`;
}

/** A pushed string, cut to `MAX_SHOWN_CHARS` with the remainder counted. */
export function clipped(text: string): Html {
  if (text.length <= MAX_SHOWN_CHARS) return html`${text}`;
  return html`${text.slice(0, MAX_SHOWN_CHARS)}<span class="muted"> … ${text.length - MAX_SHOWN_CHARS} more characters</span>`;
}

export function bytes(count: number): Html {
  return html`<span title="${count.toLocaleString('en-US')} bytes">${formatBytes(count)}</span>`;
}

export function when(iso: string | undefined): Html {
  if (!iso) return html`<span class="muted">unknown</span>`;
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return html`${clipped(iso)}`;
  return html`<time datetime="${date.toISOString()}">${date.toISOString().slice(0, 16).replace('T', ' ')} UTC</time>`;
}

export function shortDigest(digest: string): string {
  const colon = digest.indexOf(':');
  return colon < 0 ? digest.slice(0, 19) : `${digest.slice(0, colon + 13)}`;
}

/** A reference to copy: shown as text always, with a copy button when scripts run. */
export function copyable(label: string, text: string): Html {
  return html`<div class="pull"><span class="muted">${label}</span><code>${text}</code><button type="button" data-copy="${text}" hidden>Copy</button></div>`;
}

/** "Next page" when there is one: a link carrying the keyset cursor. */
export function pager(next: string | undefined, first: string | undefined): Html {
  if (!next && !first) return html``;
  return html`<nav class="pager" aria-label="Pages">${first ? html`<a href="${first}">First page</a>` : ''}${next ? html`<a href="${next}" rel="next">Next page</a>` : ''}</nav>`;
}

export function messagePage(viewer: PageViewer, title: string, message: Renderable): Html {
  return page(viewer, title, html`<h1>${title}</h1><p>${message}</p><p><a href="/ui/">Back to the repositories</a></p>`);
}
