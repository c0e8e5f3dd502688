import { expect } from 'chai';
import { SignJWT, type CryptoKey } from 'jose';
import { request } from 'undici';
import { ServiceTokenSigner } from '../../src/core/service-token.ts';
import { AUDIENCE, BACKENDS, DIDS, ISSUER, generateSigningKey, publishBlob, startTestHold, type TestHold } from '../support/hold-harness.ts';
import { randomBlob } from '../support/bytes.ts';

type Caller = 'owner' | 'crewWrite' | 'crewRead' | 'stranger' | 'anonymous' | 'forged' | 'expired' | 'wrongAudience' | 'didMismatch';

/** Expected status for a read (get-presigned-url of a blob) and a write (start-multipart). */
const MATRIX: Record<Caller, { read: number; write: number }> = {
  owner: { read: 200, write: 200 },
  crewWrite: { read: 200, write: 200 },
  crewRead: { read: 200, write: 403 },
  stranger: { read: 403, write: 403 },
  anonymous: { read: 401, write: 401 },
  forged: { read: 401, write: 401 },
  expired: { read: 401, write: 401 },
  wrongAudience: { read: 401, write: 401 },
  didMismatch: { read: 403, write: 403 },
};

for (const backend of BACKENDS) {
  describe(`hold authorization matrix (${backend})`, function () {
    let hold: TestHold;
    let publicHold: TestHold;
    let digest: string;
    let forger: ServiceTokenSigner;
    let privateKey: CryptoKey;

    before(async function () {
      hold = await startTestHold(backend);
      publicHold = await startTestHold(backend, { config: { publicRead: true } });
      digest = await publishBlob(hold, randomBlob(64));
      forger = new ServiceTokenSigner({ issuer: ISSUER, privateKey: (await generateSigningKey()).privateKey });
      const { importPKCS8 } = await import('jose');
      privateKey = (await importPKCS8(hold.keys.privateKey, 'EdDSA')) as CryptoKey;
    });
    after(async function () {
      await hold?.close();
      await publicHold?.close();
    });

    async function headersFor(caller: Caller, target: TestHold): Promise<{ headers: Record<string, string>; did: string }> {
      const now = Math.floor(Date.now() / 1000);
      const sign = (claims: { sub: string; aud: string; iat: number; exp: number }) =>
        new SignJWT({}).setProtectedHeader({ alg: 'EdDSA' }).setIssuer(ISSUER).setSubject(claims.sub).setAudience(claims.aud).setIssuedAt(claims.iat).setExpirationTime(claims.exp).sign(privateKey);
      const bearer = (token: string) => ({ authorization: `Bearer ${token}`, 'content-type': 'application/json' });
      switch (caller) {
        case 'owner':
        case 'crewWrite':
        case 'crewRead':
        case 'stranger':
          return { headers: bearer(await target.signer.sign(DIDS[caller], AUDIENCE)), did: DIDS[caller] };
        case 'anonymous':
          return { headers: { 'content-type': 'application/json' }, did: DIDS.owner };
        case 'forged':
          return { headers: bearer(await forger.sign(DIDS.owner, AUDIENCE)), did: DIDS.owner };
        case 'expired':
          return { headers: bearer(await sign({ sub: DIDS.owner, aud: AUDIENCE, iat: now - 400, exp: now - 100 })), did: DIDS.owner };
        case 'wrongAudience':
          return { headers: bearer(await sign({ sub: DIDS.owner, aud: 'did:web:other-hold', iat: now, exp: now + 60 })), did: DIDS.owner };
        case 'didMismatch':
          return { headers: bearer(await target.signer.sign(DIDS.crewRead, AUDIENCE)), did: DIDS.owner };
      }
    }

    async function post(target: TestHold, path: string, caller: Caller, body: Record<string, unknown>) {
      const { headers, did } = await headersFor(caller, target);
      const response = await request(`${target.url}${path}`, { method: 'POST', headers, body: JSON.stringify({ did, ...body }) });
      const json = (await response.body.json()) as { error?: { code: string } };
      return { status: response.statusCode, json };
    }

    for (const [caller, expected] of Object.entries(MATRIX) as [Caller, { read: number; write: number }][]) {
      it(`${caller}: read ${expected.read}, write ${expected.write}`, async function () {
        const read = await post(hold, '/get-presigned-url', caller, { digest });
        expect(read.status, JSON.stringify(read.json)).to.equal(expected.read);
        const write = await post(hold, '/start-multipart', caller, {});
        expect(write.status, JSON.stringify(write.json)).to.equal(expected.write);
        if (expected.write !== 200) expect(write.json.error?.code).to.be.oneOf(['UNAUTHORIZED', 'DENIED']);
      });
    }

    it('public read lets a stranger read but never write', async function () {
      expect((await post(publicHold, '/stat', 'stranger', { digest })).status).to.equal(404);
      expect((await post(publicHold, '/get-presigned-url', 'stranger', { digest })).status).to.equal(200);
      expect((await post(publicHold, '/start-multipart', 'stranger', {})).status).to.equal(403);
      expect((await post(publicHold, '/delete', 'stranger', { digest })).status).to.equal(403);
      expect((await post(publicHold, '/get-presigned-url', 'anonymous', { digest })).status).to.equal(401);
    });

    it("write crew cannot touch another DID's upload", async function () {
      const started = await hold.client.startMultipart(DIDS.owner);
      const response = await post(hold, '/part-presigned-url', 'crewWrite', { digest: started.upload_name, upload_id: started.upload_id, part_number: 1 });
      expect(response.status).to.equal(404);
      expect(response.json.error?.code).to.equal('UPLOAD_UNKNOWN');
      const move = await post(hold, '/move', 'crewWrite', { from: started.upload_name, to: digest });
      expect(move.status).to.equal(404);
      await hold.client.abortMultipart(DIDS.owner, started.upload_name, started.upload_id);
    });

    it('refuses a token that lives longer than five minutes', async function () {
      const now = Math.floor(Date.now() / 1000);
      const token = await new SignJWT({}).setProtectedHeader({ alg: 'EdDSA' }).setIssuer(ISSUER).setSubject(DIDS.owner).setAudience(AUDIENCE).setIssuedAt(now).setExpirationTime(now + 3600).sign(privateKey);
      const response = await request(`${hold.url}/stat`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ did: DIDS.owner, digest }),
      });
      expect(response.statusCode).to.equal(401);
      await response.body.dump();
    });
  });
}

describe('service token lifetime against the clock', function () {
  let hold: TestHold;
  let privateKey: CryptoKey;

  before(async function () {
    hold = await startTestHold('fs');
    const { importPKCS8 } = await import('jose');
    privateKey = (await importPKCS8(hold.keys.privateKey, 'EdDSA')) as CryptoKey;
  });
  after(async function () {
    await hold?.close();
  });

  async function statWith(iat: number, exp: number) {
    const token = await new SignJWT({}).setProtectedHeader({ alg: 'EdDSA' }).setIssuer(ISSUER).setSubject(DIDS.owner).setAudience(AUDIENCE).setIssuedAt(iat).setExpirationTime(exp).sign(privateKey);
    const response = await request(`${hold.url}/stat`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ did: DIDS.owner, digest: `sha256:${'0'.repeat(64)}` }),
    });
    const json = (await response.body.json()) as { error?: { code: string; message: string } };
    return { status: response.statusCode, json };
  }

  it('refuses a token issued a year in the future, though exp − iat is within the limit', async function () {
    const iat = Math.floor(Date.now() / 1000) + 365 * 86_400;
    const answer = await statWith(iat, iat + 300);
    expect(answer.status).to.equal(401);
    expect(answer.json.error?.message).to.match(/issued in the future/);
  });

  it('refuses a token that is valid for longer than tokenMaxLifetimeSeconds from now', async function () {
    // iat inside the clock-skew allowance, exp − iat at the limit: the token would still live 303 s.
    const now = Math.floor(Date.now() / 1000);
    const answer = await statWith(now + 3, now + 303);
    expect(answer.status).to.equal(401);
    expect(answer.json.error?.message).to.match(/expires .* from now/);
  });

  it('accepts a token issued slightly ahead of the hold clock and living within the limit', async function () {
    const now = Math.floor(Date.now() / 1000);
    expect((await statWith(now + 3, now + 120)).status, 'a 404 means the token was accepted').to.equal(404);
  });
});
