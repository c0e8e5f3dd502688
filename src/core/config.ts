/** Config helpers every Holdfast component shares: errors that name the key, env overrides, frozen results. */
import { z } from 'zod';

export class ConfigError extends Error {
  readonly code = 'HOLDFAST_CONFIG_INVALID';
  readonly issues: readonly string[];

  constructor(source: string, issues: readonly string[]) {
    super(`invalid config (${source}):\n  ${issues.join('\n  ')}`);
    this.name = 'ConfigError';
    this.issues = issues;
  }

  /** From a zod failure: one line per issue, naming the key. Values are never quoted, so no secret leaks. */
  static fromZod(source: string, issues: readonly { path: PropertyKey[]; message: string }[]): ConfigError {
    return new ConfigError(source, issues.map((issue) => `${issue.path.length ? issue.path.map(String).join('.') : '(root)'}: ${issue.message}`));
  }
}

/** Sets the keys `table` names from environment variables, on a copy of `raw`. */
export function applyEnvOverrides(
  raw: unknown,
  env: NodeJS.ProcessEnv,
  table: Readonly<Record<string, { path: readonly string[]; type: 'string' | 'number' | 'boolean' }>>,
): unknown {
  const copy = structuredClone(raw ?? {}) as Record<string, unknown>;
  for (const [name, { path: keyPath, type }] of Object.entries(table)) {
    const value = env[name];
    if (value === undefined || value === '') continue;
    let target = copy;
    for (const segment of keyPath.slice(0, -1)) {
      if (typeof target[segment] !== 'object' || target[segment] === null) target[segment] = {};
      target = target[segment] as Record<string, unknown>;
    }
    target[keyPath.at(-1) as string] = type === 'number' ? Number(value) : type === 'boolean' ? value === 'true' || value === '1' : value;
  }
  return copy;
}

/** Freezes a parsed config, so nothing changes it after start-up. */
export function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}

/** A server's `listen` block: the address and port, with the server's own default port. */
export function listenSchema(defaultPort: number) {
  return z
    .object({
      host: z.string().default('127.0.0.1').describe('The address to listen on; 0.0.0.0 for every interface.'),
      port: z.number().int().min(0).max(65535).default(defaultPort).describe('The port to listen on; 0 picks a free one.'),
    })
    .strict()
    .default({ host: '127.0.0.1', port: defaultPort });
}
