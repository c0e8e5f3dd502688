import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';

/**
 * Web sessions and CSRF tokens, both HMACs under one key, so every instance
 * that shares the key (derived from the token signing key) accepts them and
 * none stores them. A session names a user and an expiry checked against the
 * clock; the user is looked up again on every request, so a removed user's
 * session ends at once.
 */
export const SESSION_COOKIE = 'hf_session';
export const CSRF_COOKIE = 'hf_csrf';

export interface Session {
  username: string;
  expiresAt: number;
}

export class SessionKeys {
  readonly #key: Buffer;
  readonly #ttlSeconds: number;
  readonly #secure: boolean;

  /** `secure`: cookies carry `Secure` (the registry is reached over TLS). */
  constructor(options: { key: Buffer; ttlSeconds: number; secure: boolean }) {
    this.#key = options.key;
    this.#ttlSeconds = options.ttlSeconds;
    this.#secure = options.secure;
  }

  /** The session a request's cookie carries, if it is intact and unexpired. */
  session(request: FastifyRequest, now = Date.now()): Session | undefined {
    const value = cookie(request, SESSION_COOKIE);
    if (!value) return undefined;
    const [payload, mac] = value.split('.');
    if (!payload || !mac || !this.#verify(`session|${payload}`, mac)) return undefined;
    try {
      const parsed = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { u?: unknown; e?: unknown };
      if (typeof parsed.u !== 'string' || typeof parsed.e !== 'number' || parsed.e * 1000 <= now) return undefined;
      return { username: parsed.u, expiresAt: parsed.e };
    } catch {
      return undefined;
    }
  }

  startSession(reply: FastifyReply, username: string, now = Date.now()): void {
    const expires = Math.floor(now / 1000) + this.#ttlSeconds;
    const payload = Buffer.from(JSON.stringify({ u: username, e: expires, n: randomBytes(8).toString('base64url') })).toString('base64url');
    this.#set(reply, SESSION_COOKIE, `${payload}.${this.#mac(`session|${payload}`)}`, this.#ttlSeconds);
    // A new CSRF secret with each login, so a token seen before it is useless after.
    this.#set(reply, CSRF_COOKIE, randomBytes(18).toString('base64url'), this.#ttlSeconds);
  }

  endSession(reply: FastifyReply): void {
    this.#set(reply, SESSION_COOKIE, '', 0);
    this.#set(reply, CSRF_COOKIE, '', 0);
  }

  /**
   * The token a form carries: bound to the browser's CSRF cookie (set here
   * when missing) and to who is signed in, so it is useless on another
   * browser and after the user changes.
   */
  csrfToken(request: FastifyRequest, reply: FastifyReply, username: string | undefined): string {
    let secret = cookie(request, CSRF_COOKIE);
    if (!secret || !/^[A-Za-z0-9_-]{16,64}$/.test(secret)) {
      secret = randomBytes(18).toString('base64url');
      this.#set(reply, CSRF_COOKIE, secret, this.#ttlSeconds);
      (request as FastifyRequest & { csrfSecret?: string }).csrfSecret = secret;
    }
    return this.#mac(`csrf|${secret}|${username ?? ''}`);
  }

  /**
   * Who a script on these pages calls the account API as: the session's
   * user, when the request also carries the page's CSRF token in
   * `X-CSRF-Token` and comes from this site. Undefined without a session;
   * false when a session came without its token or from another site, so
   * another site cannot borrow a logged-in browser.
   */
  apiCaller(request: FastifyRequest): string | false | undefined {
    const session = this.session(request);
    if (!session) return undefined;
    const site = request.headers['sec-fetch-site'];
    const origin = request.headers.origin;
    if ((site !== undefined && site !== 'same-origin') || (origin !== undefined && origin !== `${request.protocol}://${request.host}`)) return false;
    return this.checkCsrf(request, request.headers['x-csrf-token'], session.username) ? session.username : false;
  }

  checkCsrf(request: FastifyRequest, token: unknown, username: string | undefined): boolean {
    const secret = cookie(request, CSRF_COOKIE);
    if (!secret || typeof token !== 'string' || token.length === 0) return false;
    return this.#verify(`csrf|${secret}|${username ?? ''}`, token);
  }

  #mac(text: string): string {
    return createHmac('sha256', this.#key).update(text).digest('base64url');
  }

  #verify(text: string, mac: string): boolean {
    const expected = Buffer.from(this.#mac(text));
    const given = Buffer.from(mac);
    return expected.length === given.length && timingSafeEqual(expected, given);
  }

  #set(reply: FastifyReply, name: string, value: string, maxAgeSeconds: number): void {
    const attributes = [`${name}=${value}`, 'Path=/ui', `Max-Age=${maxAgeSeconds}`, 'HttpOnly', 'SameSite=Strict'];
    if (this.#secure) attributes.push('Secure');
    const existing = reply.getHeader('set-cookie');
    const list = Array.isArray(existing) ? existing : typeof existing === 'string' ? [existing] : [];
    reply.header('set-cookie', [...list.filter((entry) => !String(entry).startsWith(`${name}=`)), attributes.join('; ')]);
  }
}

/** One cookie's value; the header is bounded by the server's header limit. */
export function cookie(request: FastifyRequest, name: string): string | undefined {
  const set = (request as FastifyRequest & { csrfSecret?: string }).csrfSecret;
  if (name === CSRF_COOKIE && set) return set;
  const header = request.headers.cookie;
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}
