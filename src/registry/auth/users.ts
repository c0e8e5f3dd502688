import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import bcrypt from 'bcryptjs';
import { LRUCache } from 'lru-cache';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { ConfigError } from '../../hold/config.ts';

export interface User {
  username: string;
  did: string;
  /** Repositories under `<handle>/` belong to this user. */
  handle: string;
}

const usersFileSchema = z
  .object({
    users: z.array(
      z
        .object({
          username: z.string().min(1).max(128),
          passwordHash: z.string().regex(/^\$2[aby]\$\d{2}\$.{53}$/, 'must be a bcrypt hash'),
          did: z.string().regex(/^did:[a-z0-9]+:[A-Za-z0-9._:%-]+$/),
          handle: z.string().regex(/^[a-z0-9]+(?:[._-][a-z0-9]+)*$/, 'must be a lower-case repository name component'),
        })
        .strict(),
    ),
  })
  .strict();

/**
 * Users from a credentials file (bcrypt hashes). Successful checks are cached
 * briefly by a hash of the credentials, so Basic auth on every request does
 * not pay bcrypt's cost each time.
 */
export class UserDirectory {
  readonly #users: Map<string, User & { passwordHash: string }>;
  readonly #verified = new LRUCache<string, User>({ max: 1000, ttl: 60_000 });

  private constructor(users: (User & { passwordHash: string })[]) {
    this.#users = new Map(users.map((user) => [user.username, user]));
  }

  static async load(file: string): Promise<UserDirectory> {
    const parsed = usersFileSchema.safeParse(parseYaml(await readFile(file, 'utf8')));
    if (!parsed.success) {
      throw ConfigError.fromZod(file, parsed.error.issues);
    }
    return new UserDirectory(parsed.data.users);
  }

  static fromList(users: (User & { passwordHash: string })[]): UserDirectory {
    return new UserDirectory(users);
  }

  /** The user, or undefined when the name or password is wrong. */
  async verify(username: string, password: string): Promise<User | undefined> {
    const key = createHash('sha256').update(`${username}\0${password}`).digest('hex');
    const cached = this.#verified.get(key);
    if (cached) return cached;
    const user = this.#users.get(username);
    if (!user || !(await bcrypt.compare(password, user.passwordHash))) return undefined;
    const result = { username: user.username, did: user.did, handle: user.handle };
    this.#verified.set(key, result);
    return result;
  }

  byUsername(username: string): User | undefined {
    const user = this.#users.get(username);
    return user ? { username: user.username, did: user.did, handle: user.handle } : undefined;
  }
}

export function hashPassword(password: string, rounds = 10): Promise<string> {
  return bcrypt.hash(password, rounds);
}
