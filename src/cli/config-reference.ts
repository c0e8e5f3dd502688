import { z } from 'zod';
import { driverConfigSchema } from '../driver/config.ts';
import { HOLD_ENV_OVERRIDES, holdConfigSchema } from '../hold/config.ts';
import { usersFileSchema } from '../registry/auth/users.ts';
import { REGISTRY_ENV_OVERRIDES, registryConfigSchema } from '../registry/config.ts';
import { pluginConfigSchema } from '../verdaccio/config.ts';

/**
 * docs/CONFIG.md, generated from the config schemas: every key of every
 * config file with its type, default and meaning (the schemas' descriptions).
 * `npm run docs:config` writes it; a test fails when it is out of date.
 */

export interface ConfigFile {
  title: string;
  intro: string;
  schema: z.ZodType;
  env?: Readonly<Record<string, { path: readonly string[] }>>;
}

const FILES: readonly ConfigFile[] = [
  {
    title: 'Registry: `registry.yaml`',
    intro: '`holdfast registry --config registry.yaml`. Relative paths are relative to the file.',
    schema: registryConfigSchema,
    env: REGISTRY_ENV_OVERRIDES,
  },
  {
    title: 'Storage driver: `storage.options` of `registry.yaml`, `driver` of the Verdaccio plugin',
    intro: 'The built-in `hold` driver: how a registry or Verdaccio reaches its hold and uploads to S3.',
    schema: driverConfigSchema,
  },
  {
    title: 'Users: the registry\'s `auth.usersFile`',
    intro: 'Who may log in to the registry, and as which DID. `holdfast hash-password` prints a hash for a password read on stdin.',
    schema: usersFileSchema,
  },
  {
    title: 'Hold: `hold.yaml`',
    intro: '`holdfast hold --config hold.yaml`. Relative paths are relative to the file.',
    schema: holdConfigSchema,
    env: HOLD_ENV_OVERRIDES,
  },
  {
    title: 'Verdaccio plugin: `store.holdfast` in Verdaccio\'s `config.yaml`',
    intro: 'Relative paths are relative to Verdaccio\'s config file.',
    schema: pluginConfigSchema,
  },
];

type JsonSchema = {
  type?: string | string[];
  description?: string;
  default?: unknown;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
  additionalProperties?: JsonSchema | boolean;
  oneOf?: JsonSchema[];
  anyOf?: JsonSchema[];
  enum?: unknown[];
  const?: unknown;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  minItems?: number;
  format?: string;
  pattern?: string;
};

interface Row {
  key: string;
  type: string;
  default: string;
  meaning: string;
}

export function configReference(files: readonly ConfigFile[] = FILES): string {
  const lines = [
    '# Configuration reference',
    '',
    '<!-- Generated from the config schemas by `npm run docs:config` (src/cli/config-reference.ts); edit the schemas, not this file. -->',
    '',
    'Every key of every config file, with its type, its default and what it does.',
    'A key with no default and marked *required* must be set; *optional* keys have no default and are off when unset.',
    'Unknown keys are refused, so a typo fails at start.',
    'A DID is `did:<method>:<id>`, such as `did:plc:abc123`.',
    '',
  ];
  for (const file of files) {
    const json = z.toJSONSchema(file.schema, { io: 'input', unrepresentable: 'any' }) as JsonSchema;
    const rows: Row[] = [];
    walk(json, '', true, rows, envByPath(file.env));
    lines.push(`## ${file.title}`, '', file.intro, '', '| Key | Type | Default | Meaning |', '| --- | --- | --- | --- |');
    for (const row of rows) lines.push(`| \`${row.key}\` | ${cell(row.type)} | ${cell(row.default)} | ${cell(row.meaning)} |`);
    lines.push('');
  }
  lines.push(
    '## Environment only',
    '',
    '| Variable | Meaning |',
    '| --- | --- |',
    "| `HOLDFAST_INSTANCE` | This process's name in its `/healthz` answer and its `listening` log line (`holdfast registry`, `holdfast hold`); default: random. |",
    '| `LOG_LEVEL` | pino\'s level: `trace`, `debug`, `info` (the default), `warn`, `error`. |',
    '| `HOLDFAST_NODE_FLAGS` | `off`: `bin/holdfast.js` does not start Node again with the flags of `src/cli/node-flags.ts`. |',
    '',
  );
  return lines.join('\n');
}

function envByPath(env: ConfigFile['env']): Map<string, string> {
  return new Map(Object.entries(env ?? {}).map(([name, { path }]) => [path.join('.'), name]));
}

function walk(node: JsonSchema, key: string, required: boolean, rows: Row[], env: Map<string, string>, when = ''): void {
  const variants = node.oneOf ?? node.anyOf;
  const discriminator = variants && discriminatorOf(variants);
  if (variants && discriminator) {
    const values = variants.map((variant) => variant.properties?.[discriminator]?.const);
    rows.push(row(join(key, discriminator), values.map((value) => `\`${JSON.stringify(value)}\``).join(' or '), required ? 'required' : 'optional', node.description, env, when));
    for (const variant of variants) {
      const value = `\`${JSON.stringify(variant.properties?.[discriminator]?.const)}\``;
      for (const [name, child] of Object.entries(variant.properties ?? {})) {
        if (name === discriminator) continue;
        walk(child, join(key, name), variant.required?.includes(name) ?? false, rows, env, `${when}With ${discriminator}: ${value}. `);
      }
    }
    return;
  }
  if (node.properties && key !== '' && node.description) rows.push(row(key, 'section', defaultOf(node, required), node.description, env, when));
  if (node.properties) {
    for (const [name, child] of Object.entries(node.properties)) walk(child, join(key, name), node.required?.includes(name) ?? false, rows, env, when);
    return;
  }
  if (node.type === 'array' && node.items?.properties) {
    rows.push(row(key, 'list', defaultOf(node, required), node.description, env, when));
    for (const [name, child] of Object.entries(node.items.properties)) walk(child, `${key}[].${name}`, node.items.required?.includes(name) ?? false, rows, env, when);
    return;
  }
  rows.push(row(key, typeOf(node), defaultOf(node, required), node.description, env, when));
}

function row(key: string, type: string, fallback: string, description: string | undefined, env: Map<string, string>, when: string): Row {
  const variable = env.get(key.replace(/\[\]/g, ''));
  if (!description) throw new TypeError(`config key ${key} has no description: give it one with .describe() in its schema`);
  return { key, type, default: fallback, meaning: `${when}${description}${variable ? ` Environment: \`${variable}\`.` : ''}` };
}

function discriminatorOf(variants: JsonSchema[]): string | undefined {
  const first = variants[0]?.properties ?? {};
  return Object.keys(first).find((name) => variants.every((variant) => variant.properties?.[name]?.const !== undefined));
}

function join(key: string, name: string): string {
  return key === '' ? name : `${key}.${name}`;
}

function defaultOf(node: JsonSchema, required: boolean): string {
  if (node.default !== undefined) return `\`${JSON.stringify(node.default)}\`${typeof node.default === 'number' ? inMiB(node.default) : ''}`;
  return required ? 'required' : 'optional';
}

function typeOf(node: JsonSchema): string {
  const variants = node.anyOf ?? node.oneOf;
  if (variants) return variants.map(typeOf).join(' or ');
  if (node.const !== undefined) return `\`${JSON.stringify(node.const)}\``;
  if (node.enum) return node.enum.map((value) => `\`${JSON.stringify(value)}\``).join(' or ');
  if (node.type === 'array') return `list of ${node.items ? typeOf(node.items) : 'anything'}${node.minItems ? ` (at least ${node.minItems})` : ''}`;
  if (node.type === 'object') return 'map';
  if (node.type === 'integer' || node.type === 'number') return `${node.type}${range(node.minimum, node.maximum)}`;
  if (node.type === 'string') {
    if (node.format === 'uri') return 'URL';
    if (node.pattern?.startsWith('^did:')) return 'DID';
    return `string${node.minLength !== undefined && node.minLength > 1 ? `, ${node.minLength}+ characters` : ''}${node.maxLength !== undefined ? `, at most ${node.maxLength}` : ''}`;
  }
  if (node.type === 'boolean') return 'boolean';
  return 'anything';
}

function range(minimum: number | undefined, maximum: number | undefined): string {
  const max = maximum !== undefined && maximum < Number.MAX_SAFE_INTEGER ? maximum : undefined;
  if (minimum !== undefined && max !== undefined) return `, ${minimum}${inMiB(minimum)} to ${max}${inMiB(max)}`;
  if (minimum !== undefined) return `, at least ${minimum}${inMiB(minimum)}`;
  if (max !== undefined) return `, at most ${max}${inMiB(max)}`;
  return '';
}

/** " (5 MiB)" after a byte count that is a whole number of MiB; sizes are the only such numbers in the configs. */
function inMiB(value: number): string {
  const MiB = 1024 * 1024;
  return value >= MiB && value % MiB === 0 ? ` (${value / MiB} MiB)` : '';
}

function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

if (import.meta.url === `file://${process.argv[1]}`) process.stdout.write(configReference());
