import type { Authorizer, Identity } from './types.ts';

/**
 * No authentication: every request acts as one DID. Only for the embedded
 * loopback mode (`holdfast start`), which says so in its log.
 */
export class OpenAuthorizer implements Authorizer {
  readonly #identity: Identity;

  constructor(did: string) {
    this.#identity = Object.freeze({ did });
  }

  async authorize(): Promise<Identity> {
    return this.#identity;
  }

  mayPull(): boolean {
    return true;
  }

  catalogFilter(): undefined {
    return undefined;
  }

  mayDelete(): boolean {
    return true;
  }

  viewer(): Identity & { signedIn: boolean } {
    return { ...this.#identity, signedIn: false };
  }

  ownerOf(): undefined {
    return undefined;
  }

  async base(): Promise<Identity> {
    return this.#identity;
  }
}
