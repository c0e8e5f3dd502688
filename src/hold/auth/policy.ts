/**
 * Who may do what on this hold, from config: the owner and write crew may
 * read and write, read crew may read, and anyone with a valid service token
 * may read when the hold is public.
 */
export type Access = 'read' | 'write';

export interface AccessPolicyConfig {
  owner: string;
  crew: readonly { did: string; access: Access }[];
  publicRead: boolean;
}

export class AccessPolicy {
  readonly #owner: string;
  readonly #crew: ReadonlyMap<string, Access>;
  readonly #publicRead: boolean;

  constructor(config: AccessPolicyConfig) {
    this.#owner = config.owner;
    this.#crew = new Map(config.crew.map((member) => [member.did, member.access]));
    this.#publicRead = config.publicRead;
  }

  allows(did: string, access: Access): boolean {
    if (did === this.#owner) return true;
    const granted = this.#crew.get(did);
    if (granted === 'write') return true;
    if (access === 'read') return granted === 'read' || this.#publicRead;
    return false;
  }
}
