/**
 * The pages' only way to make HTML: a tagged template that escapes every
 * value put into it, unless the value is itself `Html` made by this tag.
 * Strings pushed by whoever owns an image (labels, annotations, tags, history
 * lines) can therefore only ever become text. There is no `raw()`: markup
 * comes from template literals in this folder and nowhere else.
 *
 * Values go into element text or into double-quoted attribute values; both
 * are safe with `& < > " '` escaped. A value never starts an attribute name,
 * a tag or a URL scheme: hrefs are built with `href()` from our own paths.
 */
const MINT = Symbol('html');

export class Html {
  readonly #text: string;

  /** Only `html` below makes one: the key is not exported. */
  constructor(text: string, key: symbol) {
    if (key !== MINT) throw new TypeError('Html is made only by the html template');
    this.#text = text;
  }

  toString(): string {
    return this.#text;
  }
}

export type Renderable = Html | string | number | boolean | null | undefined | readonly Renderable[];

const ESCAPES: Readonly<Record<string, string>> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;', '`': '&#96;' };

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"'`]/g, (char) => ESCAPES[char] as string);
}

function render(value: Renderable): string {
  if (value instanceof Html) return value.toString();
  if (Array.isArray(value)) return value.map(render).join('');
  if (value === null || value === undefined || value === false) return '';
  return escapeHtml(String(value));
}

export function html(strings: TemplateStringsArray, ...values: Renderable[]): Html {
  let out = strings[0] as string;
  for (let i = 0; i < values.length; i++) out += render(values[i] as Renderable) + (strings[i + 1] as string);
  return new Html(out, MINT);
}

/**
 * A link into the pages: `/ui/` followed by path segments, each percent-
 * encoded (a repository name keeps its slashes), and a query. Never takes a
 * scheme or a host, so no pushed string can become `javascript:` or another site.
 */
export function href(segments: readonly string[], query: Readonly<Record<string, string | number | undefined>> = {}): string {
  const path = segments.map((segment) => segment.split('/').map(encodeURIComponent).join('/')).join('/');
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) if (value !== undefined && value !== '') search.set(key, String(value));
  const text = search.toString();
  return `/ui/${path}${text ? `?${text}` : ''}`;
}
