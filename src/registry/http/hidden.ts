import type { MetadataStore } from '../../metadata/oci/types.ts';

/** What each read a pull makes answers for a repository with nothing in it. */
const ABSENT = Object.freeze({
  resolveTag: undefined,
  getManifest: undefined,
  getBlob: undefined,
  repositoryExists: false,
  listTags: [],
  listReferrers: [],
} satisfies Partial<Record<keyof MetadataStore, unknown>>);

/**
 * The metadata as a caller who may not see a private repository must see
 * it: empty. The pull handlers then answer exactly as they answer for a
 * name that does not exist, from the same code. Only pulls come here; any
 * other read is a bug, and fails loudly rather than reveal something.
 */
export function absentRepository(store: MetadataStore): MetadataStore {
  return new Proxy(store, {
    get(_target, key) {
      if (typeof key === 'string' && Object.hasOwn(ABSENT, key)) {
        const value = ABSENT[key as keyof typeof ABSENT];
        return async () => (Array.isArray(value) ? [] : value);
      }
      throw new TypeError(`a pull of a hidden repository read metadata.${String(key)}`);
    },
  });
}
