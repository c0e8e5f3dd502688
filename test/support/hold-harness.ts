import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { ListMultipartUploadsCommand, ListObjectsV2Command, GetObjectCommand } from '@aws-sdk/client-s3';
import { exportPKCS8, exportSPKI, generateKeyPair } from 'jose';
import pino from 'pino';
import { ServiceTokenSigner } from '../../src/core/service-token.ts';
import { HoldClient } from '../../src/driver/hold-client.ts';
import { parseHoldConfig, type HoldConfigInput } from '../../src/hold/config.ts';
import { FsBackend } from '../../src/hold/backends/fs.ts';
import { Hold, type HoldOptions } from '../../src/hold/hold.ts';
import type { StepHook } from '../../src/hold/protocol-steps.ts';
import { sharedMinio } from './global-fixtures.ts';
import { putToUrl, sha256 } from './bytes.ts';
import { TEST_METRICS_TOKEN } from './hold-metrics.ts';
import { freePort } from './tools.ts';

export type BackendKind = 'fs' | 's3';
export const BACKENDS: readonly BackendKind[] = ['fs', 's3'];

export const DIDS = Object.freeze({
  owner: 'did:plc:owner0000000000000000',
  crewWrite: 'did:plc:crewwrite000000000000',
  crewRead: 'did:plc:crewread0000000000000',
  stranger: 'did:plc:stranger0000000000000',
});

export const ISSUER = 'did:web:registry.test';
export const AUDIENCE = 'did:web:hold.test';

export interface KeyPairPem {
  privateKey: string;
  publicKey: string;
}

export async function generateSigningKey(): Promise<KeyPairPem> {
  const pair = await generateKeyPair('EdDSA', { extractable: true });
  return { privateKey: await exportPKCS8(pair.privateKey), publicKey: await exportSPKI(pair.publicKey) };
}

/** What a test may look at behind the hold's back, with its own access. */
export interface BackendInspector {
  keys(prefix?: string): Promise<string[]>;
  pendingMultipartUploads(): Promise<number>;
  read(key: string): Promise<Buffer | undefined>;
}

export interface TestHold {
  hold: Hold;
  url: string;
  backend: BackendKind;
  /** The key prefix this hold writes under. */
  prefix: string;
  signer: ServiceTokenSigner;
  keys: KeyPairPem;
  client: HoldClient;
  inspect: BackendInspector;
  /**
   * Another hold process on the same bucket and prefix (S3 only: one hold
   * owns an fs root), as behind a load balancer; closed with this one.
   */
  sibling(options?: { onStep?: StepHook }): Promise<{ url: string }>;
  close(): Promise<void>;
}

export interface TestHoldOptions {
  config?: Partial<HoldConfigInput>;
  s3?: Record<string, unknown>;
  now?: () => Date;
  logger?: pino.Logger;
  /** More registry identities the hold trusts, signing with the same key. */
  extraIssuers?: string[];
  /** Awaited at each step of release and move, to pause one there. */
  onStep?: StepHook;
  /** The janitor's per-run budget (see `HoldOptions.janitorBudget`). */
  janitorBudget?: HoldOptions['janitorBudget'];
}

/** Stores `blob` at its digest the single-PUT way (presigned PUT, then /move) as the owner; resolves to the digest. */
export async function publishBlob(hold: TestHold, blob: Uint8Array): Promise<string> {
  const digest = sha256(blob);
  const put = await hold.client.putPresignedUrl(DIDS.owner, digest);
  await putToUrl(put.url, blob);
  await hold.client.move(DIDS.owner, put.upload_name as string, digest);
  return digest;
}

export async function startTestHold(backend: BackendKind, options: TestHoldOptions = {}): Promise<TestHold> {
  const keys = await generateSigningKey();
  const prefix = `t-${randomBytes(6).toString('hex')}`;
  let fsRoot: string | undefined;
  let storage: HoldConfigInput['storage'];
  let inspect: BackendInspector;
  if (backend === 's3') {
    const minio = await sharedMinio();
    storage = {
      backend: 's3',
      s3: {
        provider: 'minio',
        endpoint: minio.endpoint,
        region: minio.region,
        bucket: minio.bucket,
        accessKeyId: minio.accessKeyId,
        secretAccessKey: minio.secretAccessKey,
        prefix,
        ...options.s3,
      } as never,
    };
    inspect = s3Inspector(prefix);
  } else {
    fsRoot = await mkdtemp(path.join(os.tmpdir(), 'holdfast-hold-'));
    storage = { backend: 'fs', fs: { root: fsRoot, prefix } };
    inspect = undefined as unknown as BackendInspector;
  }
  // The fs backend signs URLs under publicUrl, which needs the port up front.
  const port = await freePort();
  const config = parseHoldConfig({
    listen: { host: '127.0.0.1', port },
    publicUrl: `http://127.0.0.1:${port}`,
    identity: AUDIENCE,
    owner: DIDS.owner,
    crew: [
      { did: DIDS.crewWrite, access: 'write' },
      { did: DIDS.crewRead, access: 'read' },
    ],
    trustedIssuers: [ISSUER, ...(options.extraIssuers ?? [])].map((issuer) => ({ issuer, publicKey: keys.publicKey })),
    janitorIntervalSeconds: 0,
    metrics: { bearerToken: TEST_METRICS_TOKEN },
    storage,
    ...options.config,
  });
  const logger = options.logger ?? pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
  const hold = await Hold.create(config, { logger, now: options.now, onStep: options.onStep, janitorBudget: options.janitorBudget });
  await hold.listen();
  const url = `http://127.0.0.1:${port}`;
  if (backend === 'fs') inspect = fsInspector(hold.backend as FsBackend, prefix);
  const signer = new ServiceTokenSigner({ issuer: ISSUER, privateKey: keys.privateKey });
  const client = new HoldClient({ url, audience: AUDIENCE, signer });
  const siblings: Hold[] = [];
  return {
    hold,
    url,
    backend,
    prefix: `${prefix}/`,
    signer,
    keys,
    client,
    inspect,
    async sibling(siblingOptions = {}) {
      if (backend !== 's3') throw new TypeError('one hold process owns an fs root');
      const siblingPort = await freePort();
      const sibling = await Hold.create({ ...config, listen: { ...config.listen, port: siblingPort } }, { logger, now: options.now, onStep: siblingOptions.onStep });
      await sibling.listen();
      siblings.push(sibling);
      return { url: `http://127.0.0.1:${siblingPort}` };
    },
    async close() {
      await client.close();
      await Promise.all(siblings.map((sibling) => sibling.close()));
      await hold.close();
      if (fsRoot) await rm(fsRoot, { recursive: true, force: true });
    },
  };
}

function s3Inspector(prefix: string): BackendInspector {
  return {
    async keys(under = '') {
      const minio = await sharedMinio();
      const keys: string[] = [];
      let token: string | undefined;
      do {
        const page = await minio.client.send(
          new ListObjectsV2Command({ Bucket: minio.bucket, Prefix: `${prefix}/${under}`, ContinuationToken: token }),
        );
        keys.push(...(page.Contents ?? []).map((item) => (item.Key as string).slice(prefix.length + 1)));
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (token);
      return keys.sort();
    },
    async pendingMultipartUploads() {
      // MinIO lists multipart uploads by exact key only, so list the whole
      // bucket and filter by this hold's prefix.
      const minio = await sharedMinio();
      let count = 0;
      let keyMarker: string | undefined;
      let uploadIdMarker: string | undefined;
      do {
        const page = await minio.client.send(
          new ListMultipartUploadsCommand({ Bucket: minio.bucket, KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker }),
        );
        count += (page.Uploads ?? []).filter((upload) => upload.Key?.startsWith(`${prefix}/`)).length;
        keyMarker = page.IsTruncated ? page.NextKeyMarker : undefined;
        uploadIdMarker = page.IsTruncated ? page.NextUploadIdMarker : undefined;
      } while (keyMarker);
      return count;
    },
    async read(key) {
      const minio = await sharedMinio();
      try {
        const result = await minio.client.send(new GetObjectCommand({ Bucket: minio.bucket, Key: `${prefix}/${key}` }));
        return Buffer.from(await (result.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray());
      } catch {
        return undefined;
      }
    },
  };
}

function fsInspector(backend: FsBackend, prefix: string): BackendInspector {
  return {
    async keys(under = '') {
      const keys: string[] = [];
      for await (const object of backend.list(`${prefix}/${under}`)) keys.push(object.key.slice(prefix.length + 1));
      return keys.sort();
    },
    async pendingMultipartUploads() {
      return (await backend.pendingMultipartUploads()).length;
    },
    async read(key) {
      const object = await backend.getSmall(`${prefix}/${key}`);
      return object ? Buffer.from(object.body) : undefined;
    },
  };
}
