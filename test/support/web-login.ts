import { request } from 'undici';

/** The cookies a response sets, as a `Cookie` header (cleared ones left out). */
export function cookiesOf(headers: Record<string, string | string[] | undefined>): string {
  return ([headers['set-cookie'] ?? []].flat() as string[]).map((line) => line.split(';')[0] as string).filter((pair) => !pair.endsWith('=')).join('; ');
}

/** The CSRF token of the first form on a page. */
export function csrfToken(text: string): string {
  const token = /name="csrf" value="([^"]+)"/.exec(text)?.[1];
  if (!token) throw new Error('no CSRF token on the page');
  return token;
}

/** Logs in through the web form as a browser would (the form's CSRF cookie and token first); resolves the session's `Cookie` header. */
export async function webLogin(base: string, user: { username: string; password: string }): Promise<string> {
  const form = await request(`${base}/ui/login`);
  const text = await form.body.text();
  const response = await request(`${base}/ui/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: cookiesOf(form.headers) },
    body: new URLSearchParams({ csrf: csrfToken(text), username: user.username, password: user.password, next: '/ui/' }).toString(),
  });
  const body = await response.body.text();
  if (response.statusCode !== 303) throw new Error(`web login: ${response.statusCode} ${body.slice(0, 300)}`);
  return cookiesOf(response.headers);
}
