import { expect } from 'chai';
import { spawn } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseDigest } from '../../src/core/digest.ts';
import { parseByteRange } from '../../src/core/http-range.ts';
import { missingNodeFlags, NODE_FLAGS } from '../../src/cli/node-flags.ts';
import { allSettled } from '../../src/core/settled.ts';
import { freePort } from '../../src/core/net.ts';
import { assertCompletableParts, assertNonFinalPartSizes, normalizeEtag } from '../../src/hold/uploads/multipart-rules.ts';
import { HoldError } from '../../src/hold/errors.ts';
import { waitForHttp, WrongServerError } from '../support/tools.ts';

describe('digest parsing', function () {
  it('accepts sha256 and sha512 of the right length only', function () {
    expect(parseDigest(`sha256:${'0'.repeat(64)}`)?.algorithm).to.equal('sha256');
    expect(parseDigest(`sha512:${'0'.repeat(128)}`)?.algorithm).to.equal('sha512');
    expect(parseDigest(`sha512:${'0'.repeat(64)}`)).to.equal(undefined);
    expect(parseDigest(`sha256:${'0'.repeat(65)}`)).to.equal(undefined);
    expect(parseDigest(`sha256:${'G'.repeat(64)}`)).to.equal(undefined);
  });
});

describe('byte ranges', function () {
  const table: [string | undefined, number, ReturnType<typeof parseByteRange>][] = [
    [undefined, 10, { kind: 'none' }],
    ['bytes=0-4', 10, { kind: 'range', start: 0, end: 4 }],
    ['bytes=5-', 10, { kind: 'range', start: 5, end: 9 }],
    ['bytes=-3', 10, { kind: 'range', start: 7, end: 9 }],
    ['bytes=0-100', 10, { kind: 'range', start: 0, end: 9 }],
    ['bytes=10-', 10, { kind: 'unsatisfiable' }],
    ['bytes=4-2', 10, { kind: 'unsatisfiable' }],
    ['bytes=0-1,3-4', 10, { kind: 'unsatisfiable' }],
    ['items=0-1', 10, { kind: 'unsatisfiable' }],
    ['bytes=-', 10, { kind: 'unsatisfiable' }],
    ['bytes=0-0', 0, { kind: 'unsatisfiable' }],
  ];
  for (const [header, size, expected] of table) {
    it(`${header} of ${size} bytes → ${expected.kind}`, function () {
      expect(parseByteRange(header, size)).to.deep.equal(expected);
    });
  }
});

describe('multipart rules', function () {
  it('normalizes ETag quoting', function () {
    for (const etag of ['abc', '"abc"', 'W/"abc"', ' "abc" ', '""abc""']) expect(normalizeEtag(etag)).to.equal('"abc"');
  });

  it('requires ascending, in-range part numbers', function () {
    const code = (fn: () => void) => {
      try {
        fn();
        return 'ok';
      } catch (err) {
        return (err as HoldError).code;
      }
    };
    expect(code(() => assertCompletableParts([]))).to.equal('INVALID_REQUEST');
    expect(code(() => assertCompletableParts([{ part_number: 0, etag: 'a' }]))).to.equal('PART_NUMBER_INVALID');
    expect(code(() => assertCompletableParts([{ part_number: 10_001, etag: 'a' }]))).to.equal('PART_NUMBER_INVALID');
    expect(code(() => assertCompletableParts([{ part_number: 2, etag: 'a' }, { part_number: 2, etag: 'b' }]))).to.equal('INVALID_PART');
    expect(code(() => assertCompletableParts([{ part_number: 1, etag: '""' }]))).to.equal('INVALID_PART');
    expect(code(() => assertCompletableParts([{ part_number: 1, etag: 'a' }, { part_number: 3, etag: 'b' }]))).to.equal('ok');
    expect(code(() => assertNonFinalPartSizes([{ part_number: 1, size: 5 * 1024 * 1024 - 1 }, { part_number: 2, size: 1 }]))).to.equal('PART_TOO_SMALL');
    expect(code(() => assertNonFinalPartSizes([{ part_number: 1, size: 5 * 1024 * 1024 }, { part_number: 2, size: 0 }]))).to.equal('ok');
  });
});

describe('allSettled', function () {
  it('rethrows the first failure only once every call has ended', async function () {
    let slowEnded = false;
    const slow = new Promise((resolve) => setTimeout(resolve, 50)).then(() => {
      slowEnded = true;
    });
    const error = await allSettled([Promise.reject(new Error('first')), slow, Promise.reject(new Error('second'))]).catch((err: unknown) => err);
    expect((error as Error).message).to.equal('first');
    expect(slowEnded, 'the slow call had ended').to.equal(true);
  });

  it('resolves to every value in order', async function () {
    expect(await allSettled([Promise.resolve(1), 'two', undefined] as const)).to.deep.equal([1, 'two', undefined]);
  });
});

describe('the Node flags of the long-running commands', function () {
  it('are all missing from a bare start, and none once given, whatever value or spelling the operator chose', function () {
    expect(missingNodeFlags([])).to.deep.equal([...NODE_FLAGS]);
    expect(missingNodeFlags([...NODE_FLAGS])).to.deep.equal([]);
    expect(missingNodeFlags(['--initial_old_space_size=256', '--max-semi-space-size=16'])).to.deep.equal([]);
    expect(missingNodeFlags(['--import', 'tsx', '--initial-old-space-size=128'])).to.deep.equal(NODE_FLAGS.filter((flag) => !flag.startsWith('--initial-old-space-size')));
  });
});

describe('free ports', function () {
  it('never hands out one port twice, though the kernel may offer it again once probed', async function () {
    const ports: number[] = [];
    for (let index = 0; index < 300; index++) ports.push(await freePort());
    expect(new Set(ports).size).to.equal(ports.length);
  });
});

describe('health checks of the servers the harness starts', function () {
  it("fail at once when a port is answered by another server's health check", async function () {
    const other = http.createServer((_request, response) => response.setHeader('content-type', 'application/json').end(JSON.stringify({ status: 'ok', service: 'hold', instance: 'hold-a' })));
    await new Promise<void>((resolve) => other.listen(0, '127.0.0.1', resolve));
    const started = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)'], { stdio: 'ignore' });
    try {
      const { port } = other.address() as AddressInfo;
      const startedAt = Date.now();
      const err = await waitForHttp(`http://127.0.0.1:${port}/healthz`, started, { timeoutMs: 20_000, identity: { service: 'registry', instance: 'registry-0' } }).catch((e: unknown) => e);
      expect(err).to.be.instanceOf(WrongServerError);
      expect((err as Error).message).to.include('answered by hold hold-a, not by registry registry-0');
      expect(Date.now() - startedAt).to.be.below(5_000);
      await waitForHttp(`http://127.0.0.1:${port}/healthz`, started, { timeoutMs: 5_000, identity: { service: 'hold', instance: 'hold-a' } });
    } finally {
      started.kill();
      other.close();
    }
  });
});
