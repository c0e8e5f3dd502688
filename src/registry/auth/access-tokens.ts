/**
 * Access tokens: secrets a user creates for CI and scripts, each limited to
 * repository patterns and actions, with an expiry. A client sends one as the
 * password of its user (Basic, `docker login`, the token endpoint).
 *
 * The secret reads `hfat_` + 12 characters of id + 32 of secret + 6 of
 * checksum, all base62: the prefix lets secret scanners find a leaked one,
 * and the checksum (CRC-32) lets them, and us, tell a real one from a typo
 * without a lookup. Only a SHA-256 of the whole secret is stored: it has
 * 190 bits of randomness, so a slow hash would add nothing.
 */
import { createHash, randomInt, timingSafeEqual } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { AccountRuleError, type AccountStore, type TokenAction, type TokenRow, type UserRow } from '../../metadata/accounts/store.ts';
import { PATTERN_CHARACTERS } from '../policies/glob.ts';
import { isRepositoryName } from '../names.ts';

export const TOKEN_PREFIX = 'hfat_';
const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const TOKEN_SHAPE = /^hfat_([0-9A-Za-z]{12})([0-9A-Za-z]{32})([0-9A-Za-z]{6})$/;

export const TOKEN_ACTIONS: readonly TokenAction[] = ['pull', 'push', 'delete'];

/** A robot account's name after `<owner>+`. */
export const ROBOT_NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;

/** Bounds on what one user may create. */
export const TOKEN_LIMITS = Object.freeze({
  robotsPerUser: 50,
  livePerUser: 100,
  maxDays: 366,
  defaultDays: 30,
  maxPatterns: 16,
  maxPatternLength: 255,
  maxNameLength: 64,
});

/** A request for a token that breaks a rule: the message says which. */
export class TokenRequestError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TokenRequestError';
  }
}

/** Whether `text` has a token's shape and checksum; its id and the hash to compare when it has. */
export function parseAccessToken(text: string): { id: string; secretHash: Buffer } | undefined {
  const match = TOKEN_SHAPE.exec(text);
  if (!match) return undefined;
  const body = text.slice(0, -6);
  if (base62(crc32(body), 6) !== match[3]) return undefined;
  return { id: match[1] as string, secretHash: sha256(text) };
}

/** Whether a presented secret's hash is the stored one; compared in constant time. */
export function secretMatches(presented: Buffer, stored: string): boolean {
  const expected = Buffer.from(stored, 'hex');
  return expected.length === presented.length && timingSafeEqual(expected, presented);
}

export interface TokenRequest {
  owner: string;
  name: string;
  repositories: readonly string[];
  actions: readonly string[];
  /** Days until it expires (default 30, at most 366). */
  expiresInDays?: number;
}

/** Checks a request, stores the token's hash and returns the secret: the only time it exists outside the client. */
export async function createAccessToken(store: AccountStore, request: TokenRequest, now = new Date()): Promise<{ secret: string; token: TokenRow }> {
  const name = request.name.trim();
  if (!name || name.length > TOKEN_LIMITS.maxNameLength || [...name].some((c) => c < ' ' || c === '\u007f')) throw new TokenRequestError(`a token name is 1 to ${TOKEN_LIMITS.maxNameLength} printable characters`);
  const repositories = [...new Set(request.repositories)];
  if (repositories.length === 0 || repositories.length > TOKEN_LIMITS.maxPatterns) throw new TokenRequestError(`a token names 1 to ${TOKEN_LIMITS.maxPatterns} repository patterns`);
  for (const pattern of repositories) {
    // A pattern is a name with wildcards: with each wildcard as one letter, it must be a repository name.
    if (pattern.length > TOKEN_LIMITS.maxPatternLength || !PATTERN_CHARACTERS.test(pattern) || !isRepositoryName(pattern.replace(/\*\*|\*|\?/g, 'a'))) throw new TokenRequestError(`not a repository pattern: ${JSON.stringify(pattern.slice(0, 80))} (names with * ? ** wildcards)`);
  }
  const actions = [...new Set(request.actions)];
  if (actions.length === 0 || !actions.every((action): action is TokenAction => (TOKEN_ACTIONS as readonly string[]).includes(action))) {
    throw new TokenRequestError(`a token's actions are some of ${TOKEN_ACTIONS.join(', ')}`);
  }
  const days = request.expiresInDays ?? TOKEN_LIMITS.defaultDays;
  if (!Number.isFinite(days) || days <= 0 || days > TOKEN_LIMITS.maxDays) throw new TokenRequestError(`a token expires within 1 to ${TOKEN_LIMITS.maxDays} days`);
  if ((await store.liveTokenCount(request.owner, now)) >= TOKEN_LIMITS.livePerUser) {
    throw new TokenRequestError(`${request.owner} has ${TOKEN_LIMITS.livePerUser} live tokens; revoke one first`);
  }
  const id = randomBase62(12);
  const body = `${TOKEN_PREFIX}${id}${randomBase62(32)}`;
  const secret = `${body}${base62(crc32(body), 6)}`;
  const token: TokenRow = {
    id,
    owner: request.owner,
    name,
    secretHash: sha256(secret).toString('hex'),
    repositories,
    actions: TOKEN_ACTIONS.filter((action) => actions.includes(action)),
    createdAt: now.toISOString(),
    expiresAt: new Date(now.getTime() + days * 86_400_000).toISOString(),
  };
  await store.createToken(token);
  return { secret, token };
}

/** Adds robot account `<owner>+<name>`; throws `AccountRuleError` (or `AccountConflictError`) saying what is wrong. */
export async function createRobot(store: AccountStore, owner: string, name: string): Promise<UserRow> {
  if (!ROBOT_NAME.test(name)) throw new AccountRuleError('a robot name is 1 to 64 of a-z 0-9 . _ -, starting with a letter or digit');
  return store.addRobot(owner, name, TOKEN_LIMITS.robotsPerUser);
}

/** Whose tokens `username` manages: their own and their robot accounts'. */
export async function tokenHolders(store: AccountStore, username: string): Promise<string[]> {
  return [username, ...(await store.robots(username)).map((robot) => robot.username)];
}

/** The tokens `username` manages, theirs and then each robot's, each holder's newest first, at most `perHolder` of each. */
export async function tokensOf(store: AccountStore, username: string, perHolder: number): Promise<TokenRow[]> {
  const tokens: TokenRow[] = [];
  for (const holder of await tokenHolders(store, username)) tokens.push(...(await store.tokens(holder, perHolder)));
  return tokens;
}

/** Revokes token `id` if it is a live one `username` manages; false otherwise, whether or not it exists. */
export async function revokeOwnToken(store: AccountStore, username: string, id: string): Promise<boolean> {
  const row = id ? await store.token(id) : undefined;
  return row !== undefined && (await tokenHolders(store, username)).includes(row.owner) && (await store.revokeToken(id, row.owner));
}

/** What `token list` and the API show of a token: everything but its hash. */
export function describeToken(token: TokenRow, now = new Date()): Omit<TokenRow, 'secretHash'> & { state: 'live' | 'expired' | 'revoked' } {
  const { secretHash: _hash, ...shown } = token;
  return { ...shown, state: token.revokedAt ? 'revoked' : Date.parse(token.expiresAt) <= now.getTime() ? 'expired' : 'live' };
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

function randomBase62(length: number): string {
  let text = '';
  // randomInt draws without modulo bias.
  for (let index = 0; index < length; index++) text += BASE62[randomInt(62)];
  return text;
}

function base62(value: number, length: number): string {
  let text = '';
  let rest = value >>> 0;
  for (let index = 0; index < length; index++) {
    text = BASE62[rest % 62] + text;
    rest = Math.floor(rest / 62);
  }
  return text;
}
