import { expect } from 'chai';
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { loadHoldConfig, parseHoldConfig } from '../../src/hold/config.ts';
import { ConfigError } from '../../src/core/config.ts';
import { HOLD_ERRORS } from '../../src/protocol/hold-api.ts';

const VALID = {
  identity: 'did:web:hold.example',
  owner: 'did:plc:owner',
  trustedIssuers: [{ issuer: 'did:web:registry.example', publicKey: 'PEM' }],
  storage: { backend: 's3', s3: { bucket: 'blobs', endpoint: 'http://127.0.0.1:9000', accessKeyId: 'a', secretAccessKey: 's' } },
};

function issues(input: unknown): string[] {
  try {
    parseHoldConfig(input);
    return [];
  } catch (err) {
    expect(err).to.be.instanceOf(ConfigError);
    return [...(err as ConfigError).issues];
  }
}

describe('hold config', function () {
  it('fills defaults, freezes, and does not mutate its input', function () {
    const input = structuredClone(VALID);
    const config = parseHoldConfig(input);
    expect(input).to.deep.equal(VALID);
    expect(config.presignTtlSeconds).to.equal(900);
    expect(config.listen).to.deep.equal({ host: '127.0.0.1', port: 8080 });
    expect(Object.isFrozen(config) && Object.isFrozen(config.storage)).to.equal(true);
  });

  it('names the bad field and the allowed range', function () {
    expect(issues({ ...VALID, presignTtlSeconds: 3600 }).join()).to.match(/presignTtlSeconds: .*900/);
    expect(issues({ ...VALID, owner: 'bob' }).join()).to.match(/owner: must be a DID/);
    expect(issues({ ...VALID, storage: { backend: 'gcs' } }).join()).to.match(/storage/);
    expect(issues({ ...VALID, surprise: 1 }).join()).to.match(/surprise/);
    const s3 = { ...VALID.storage.s3, secretAccessKey: undefined };
    expect(issues({ ...VALID, storage: { backend: 's3', s3 } }).join()).to.match(/storage\.s3\.secretAccessKey: accessKeyId and secretAccessKey must be set together/);
  });

  it('never puts a secret in an error message', function () {
    const secret = 'super-secret-value-123';
    const message = issues({ ...VALID, storage: { backend: 's3', s3: { ...VALID.storage.s3, secretAccessKey: secret, bucket: 'x' } } }).join();
    expect(message).to.match(/bucket/);
    expect(message).to.not.include(secret);
  });

  it('loads YAML, applies environment overrides, and reads key files', async function () {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'holdfast-config-'));
    await writeFile(path.join(dir, 'registry.pub'), 'PUBLIC KEY PEM');
    await writeFile(
      path.join(dir, 'hold.yaml'),
      [
        'identity: did:web:hold.example',
        'owner: did:plc:owner',
        'trustedIssuers:',
        '  - issuer: did:web:registry.example',
        '    publicKeyFile: registry.pub',
        'storage:',
        '  backend: s3',
        '  s3: { bucket: blobs, provider: r2 }',
      ].join('\n'),
    );
    const config = await loadHoldConfig(path.join(dir, 'hold.yaml'), {
      HOLDFAST_S3_ACCESS_KEY_ID: 'id',
      HOLDFAST_S3_SECRET_ACCESS_KEY: 'secret',
      HOLDFAST_HOLD_PORT: '9999',
    });
    expect(config.listen.port).to.equal(9999);
    expect(config.trustedIssuers[0]?.publicKey).to.equal('PUBLIC KEY PEM');
    expect(config.storage.backend === 's3' && config.storage.s3.secretAccessKey).to.equal('secret');
  });

  it('has a status for every error code', function () {
    for (const [code, entry] of Object.entries(HOLD_ERRORS)) {
      expect(entry.status, code).to.be.within(400, 599);
      expect(entry.message, code).to.be.a('string').and.not.equal('');
    }
  });
});
