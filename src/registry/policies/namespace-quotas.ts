import { formatBytes } from '../../core/byte-size.ts';
import type { MetadataStore } from '../../metadata/oci/types.ts';
import type { RegistryConfig } from '../config.ts';
import { RegistryError } from '../errors.ts';
import { compileGlob, type Matcher } from './glob.ts';

/**
 * `policies.namespaceQuotas`: unique blob bytes linked into a namespace's
 * repositories, counted from the metadata database when a limit applies.
 * Checked before a link, not inside it: commits into one namespace that run
 * at once are each checked against the same count, so together they may pass
 * it by what they commit then. The hold's per-DID quota is the exact one.
 */
export class NamespaceQuotas {
  readonly #rules: { covers: Matcher; limit: number }[];
  readonly #store: Pick<MetadataStore, 'namespaceBytes' | 'linkedInNamespace'>;
  readonly #refused: QuotaRefusalListener | undefined;

  /** `refused` hears each refusal (the `quota.exceeded` event). */
  constructor(rules: RegistryConfig['policies']['namespaceQuotas'], store: Pick<MetadataStore, 'namespaceBytes' | 'linkedInNamespace'>, refused?: QuotaRefusalListener) {
    this.#rules = rules.map((rule) => ({ covers: compileGlob(rule.namespaces), limit: rule.limit }));
    this.#store = store;
    this.#refused = refused;
  }

  /** At an upload's start: refused when the namespace is already at its limit. */
  async assertRoom(repository: string, actor?: string): Promise<void> {
    const limit = this.limitOf(repository);
    if (!limit) return;
    const used = await this.#store.namespaceBytes(limit.namespace);
    if (used >= limit.bytes) throw this.#exceeded(repository, limit, used, 0, actor);
  }

  /** Before a blob is linked: refused when it is new to the namespace and would pass its limit. */
  async assertFits(repository: string, digest: string, size: number, actor?: string): Promise<void> {
    const limit = this.limitOf(repository);
    if (!limit || (await this.#store.linkedInNamespace(limit.namespace, digest))) return;
    const used = await this.#store.namespaceBytes(limit.namespace);
    if (used + size > limit.bytes) throw this.#exceeded(repository, limit, used, size, actor);
  }

  #exceeded(repository: string, limit: { namespace: string; bytes: number }, used: number, adding: number, actor: string | undefined): RegistryError {
    this.#refused?.({ repository, namespace: limit.namespace, limit: limit.bytes, used, adding }, actor);
    return exceeded(limit, used, adding);
  }

  /** The limit on a repository's namespace, if a rule covers it. */
  limitOf(repository: string): { namespace: string; bytes: number } | undefined {
    const namespace = repository.split('/', 1)[0] as string;
    const rule = this.#rules.find((candidate) => candidate.covers(namespace));
    return rule ? { namespace, bytes: rule.limit } : undefined;
  }
}

export type QuotaRefusalListener = (refusal: { repository: string; namespace: string; limit: number; used: number; adding: number }, actor: string | undefined) => void;

function exceeded(limit: { namespace: string; bytes: number }, used: number, adding: number): RegistryError {
  const adds = adding > 0 ? `; this push adds ${formatBytes(adding)}` : '';
  return new RegistryError('DENIED', `quota exceeded for namespace ${limit.namespace} on this registry: ${formatBytes(used)} used of ${formatBytes(limit.bytes)}${adds}`);
}
