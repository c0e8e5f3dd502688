import type { FastifyReply, FastifyRequest } from 'fastify';
import type { BrowseStore } from '../../metadata/oci/browse.ts';
import type { GcStore } from '../../metadata/oci/gc.ts';
import type { AccountStore } from '../../metadata/accounts/store.ts';
import type { Identity } from '../auth/types.ts';
import type { RegistryContext } from '../http/context.ts';
import type { ImageConfigs } from './image-config.ts';
import type { PageViewer } from './layout.ts';
import type { SessionKeys } from './session.ts';

/** What the pages read from; they write only through `deleteReference`, as the API does. */
export interface UiContext {
  registry: RegistryContext;
  browse: BrowseStore;
  gc: GcStore;
  sessions: SessionKeys;
  configs: ImageConfigs;
  /** `host[:port]` clients pull from. */
  pullHost: string;
  loginEnabled: boolean;
  /** The hold(s) this registry stores blobs in, as configured. */
  holds: { url: string; did?: string }[];
  gcSettings: { enabled: boolean; graceSeconds: number; intervalSeconds: number };
  /** Users' tokens and robot accounts, with authentication on; `changed` makes this instance apply a change at once. */
  accounts?: { store: AccountStore; changed(): Promise<void> };
  /** `auth.defaultVisibility: private`, for what the access page says applies. */
  defaultPrivate: boolean;
}

/** One page request: who asks (checked by the API's own authorizer) and how to answer. */
export interface UiRequest {
  request: FastifyRequest;
  reply: FastifyReply;
  identity: Identity;
  viewer: PageViewer;
}
