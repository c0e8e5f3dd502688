import type { TagPredicate } from '../../metadata/oci/types.ts';
import type { RegistryConfig } from '../config.ts';
import { anyOf, compileGlob, type Matcher } from './glob.ts';

/** `policies.immutableTags`, compiled once: which tags of a repository never move. */
export class ImmutableTags {
  readonly #rules: { repositories: Matcher; tags: Matcher }[];

  constructor(rules: RegistryConfig['policies']['immutableTags']) {
    this.#rules = rules.map((rule) => ({ repositories: compileGlob(rule.repositories), tags: anyOf(rule.tags) }));
  }

  /** The predicate for one repository's tags; undefined when no rule covers it. */
  in(repository: string): TagPredicate | undefined {
    const rules = this.#rules.filter((rule) => rule.repositories(repository));
    if (rules.length === 0) return undefined;
    return (tag) => rules.some((rule) => rule.tags(tag));
  }
}
