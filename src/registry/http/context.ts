import type { FastifyReply, FastifyRequest } from 'fastify';
import type { BlobStore } from '../../driver/types.ts';
import type { Authorizer, Identity } from '../auth/types.ts';
import type { MetadataStore } from '../../metadata/oci/types.ts';
import type { RegistryMetrics } from '../metrics.ts';
import type { KeyedCounter } from '../../core/keyed-counter.ts';
import type { KeyedMutex } from '../../core/keyed-mutex.ts';
import type { RegistryConfig } from '../config.ts';
import type { UploadLeases, UploadRequestStepHook } from '../upload-lease.ts';
import type { ImmutableTags } from '../policies/immutable.ts';
import type { NamespaceQuotas } from '../policies/namespace-quotas.ts';
import type { EventRecorder } from '../events/recorder.ts';

/** Anything that hands out a BlobStore per DID: the hold driver, or another storage plugin. */
export interface StorageDriver {
  blobStore(did: string): BlobStore;
  close(): Promise<void>;
}

/** What every handler shares. */
export interface RegistryContext {
  metadata: MetadataStore;
  storage: StorageDriver;
  authorizer: Authorizer;
  /** `redirect`: GET blob answers 307 to a presigned URL; `proxy`: the registry streams it. */
  blobDelivery: 'redirect' | 'proxy';
  metrics: RegistryMetrics;
  uploadLocks: KeyedMutex;
  /** Which request writes an upload, across every instance. */
  uploadLeases: UploadLeases;
  /** Awaited at each step of an upload request; a no-op but in tests. */
  uploadStep: UploadRequestStepHook;
  limits: RegistryConfig['limits'];
  /** `policies.immutableTags`. */
  immutableTags: ImmutableTags;
  /** `policies.namespaceQuotas`. */
  namespaceQuotas: NamespaceQuotas;
  /** Set when events are configured: pulls and quota refusals are reported through it (changes report themselves, from the store). */
  events?: EventRecorder;
  /** Uploads being opened (or streaming monolithically) in this process, per DID. */
  openingUploads: KeyedCounter;
  /** Requests for each upload this process has taken in (running or waiting their turn). */
  uploadWaiters: KeyedCounter;
}

/** One request, after routing and authorization. */
export interface Call {
  request: FastifyRequest;
  reply: FastifyReply;
  name: string;
  reference: string;
  identity: Identity;
  store: BlobStore;
  query: Record<string, string | undefined>;
}

export type Handler = (ctx: RegistryContext, call: Call) => Promise<unknown>;

/** Who events say did something: the user's name, or the DID of a caller without one. */
export function actorOf(identity: Identity): string {
  return identity.username ?? identity.did;
}
