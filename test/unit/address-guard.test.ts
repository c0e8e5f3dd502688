import { expect } from 'chai';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Agent, request } from 'undici';
import { AddressPolicy, ForbiddenAddressError, type Resolver } from '../../src/registry/events/address-guard.ts';

/** A resolver answering from a fixed table; any other name fails like getaddrinfo does. */
function resolverOf(table: Record<string, string[]>): Resolver {
  return async (hostname) => {
    const addresses = table[hostname];
    if (!addresses) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' });
    return addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
  };
}

const noResolver: Resolver = async (hostname) => {
  throw new Error(`the resolver must not be asked about ${hostname}`);
};

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => expect.fail('expected a rejection'),
    (error: unknown) => error,
  );
}

/** Calls `policy.lookup` and returns what it called back with. */
function lookupVia(policy: AddressPolicy, hostname: string, options: object): Promise<unknown[]> {
  return new Promise((resolve) => policy.lookup(hostname, options, (...args: unknown[]) => resolve(args)));
}

describe('webhook address guard', function () {
  describe('forbidden ranges', function () {
    const policy = new AddressPolicy();
    const cases: [string, RegExp][] = [
      ['fec0::1', /site-local/],
      ['64:ff9b:1::a00:1', /local-use NAT64/],
      ['2001:0:4136:e378:8000:63bf:3fff:fdd2', /Teredo/],
      ['::ffff:0:7f00:1', /IPv4-translated/],
      ['0.0.0.0', /this network/],
      ['0.1.2.3', /this network/],
      ['10.0.0.1', /private/],
      ['10.255.255.255', /private/],
      ['172.16.0.1', /private/],
      ['172.31.255.255', /private/],
      ['192.168.1.1', /private/],
      ['127.0.0.1', /loopback/],
      ['127.255.255.254', /loopback/],
      ['169.254.1.1', /link-local/],
      ['169.254.169.254', /^cloud metadata$/],
      ['169.254.170.2', /^cloud metadata$/],
      ['100.64.0.1', /CGNAT/],
      ['100.127.255.255', /CGNAT/],
      ['192.0.0.8', /IETF protocol assignments/],
      ['192.0.2.1', /documentation/],
      ['198.51.100.7', /documentation/],
      ['203.0.113.9', /documentation/],
      ['198.18.0.1', /benchmarking/],
      ['198.19.255.255', /benchmarking/],
      ['224.0.0.1', /multicast/],
      ['239.255.255.250', /multicast/],
      ['240.0.0.1', /reserved/],
      ['255.255.255.254', /reserved/],
      ['255.255.255.255', /broadcast/],
      ['::', /unspecified/],
      ['::1', /loopback/],
      ['fe80::1', /link-local/],
      ['febf:ffff::1', /link-local/],
      ['fe80::1%eth0', /link-local/],
      ['fc00::1', /unique-local/],
      ['fd12:3456::1', /unique-local/],
      ['fd00:ec2::254', /^cloud metadata$/],
      ['ff02::1', /multicast/],
      ['ff05::1:3', /multicast/],
      ['2001:db8::1', /documentation/],
      ['2001:db8:ffff::1', /documentation/],
      ['100::1', /discard/],
      ['100::ffff:ffff:ffff:ffff', /discard/],
    ];
    for (const [address, reason] of cases) {
      it(`refuses ${address}`, function () {
        expect(policy.forbidden(address)).to.match(reason);
      });
    }

    const reachable = [
      '8.8.8.8',
      '1.1.1.1',
      '93.184.216.34',
      '9.255.255.255',
      '11.0.0.0',
      '172.15.255.255',
      '172.32.0.1',
      '100.63.255.255',
      '100.128.0.1',
      '169.253.255.255',
      '198.17.255.255',
      '198.20.0.1',
      '223.255.255.255',
      '2606:4700::1111',
      '2001:4860:4860::8888',
      '100:0:0:1::1',
      '2001:db9::1',
      'fbff::1',
    ];
    for (const address of reachable) {
      it(`lets ${address} through`, function () {
        expect(policy.forbidden(address)).to.equal(undefined);
      });
    }

    it('refuses what is not an IP address', function () {
      for (const text of ['', 'example.com', '127.1', '0177.0.0.1', '[::1]', '1.2.3.4/32']) {
        expect(policy.forbidden(text), text).to.equal('not an IP address');
      }
    });
  });

  describe('IPv4 embedded in IPv6', function () {
    const policy = new AddressPolicy();
    const loopback = ['::ffff:127.0.0.1', '::ffff:7f00:1', '::127.0.0.1', '::7f00:1', '64:ff9b::127.0.0.1', '64:ff9b::7f00:1', '2002:7f00:1::', '2002:7f00:1:1::1'];
    const metadata = ['::ffff:169.254.169.254', '::ffff:a9fe:a9fe', '::169.254.169.254', '64:ff9b::169.254.169.254', '64:ff9b::a9fe:a9fe', '2002:a9fe:a9fe::', '2002:a9fe:a9fe:1::1'];

    for (const address of loopback) {
      it(`refuses ${address} as 127.0.0.1`, function () {
        expect(policy.forbidden(address)).to.match(/loopback/).and.to.include('127.0.0.1');
      });
    }
    for (const address of metadata) {
      it(`refuses ${address} as 169.254.169.254`, function () {
        expect(policy.forbidden(address)).to.match(/cloud metadata/).and.to.include('169.254.169.254');
      });
    }

    it('unwraps the private ranges too', function () {
      for (const address of ['::ffff:10.0.0.1', '::ffff:c0a8:101', '64:ff9b::ac10:1', '2002:a00:1::', '::ffff:0.0.0.0']) {
        expect(policy.forbidden(address), address).to.be.a('string');
      }
    });

    it('lets public IPv4 through in every embedded form', function () {
      for (const address of ['::ffff:8.8.8.8', '::ffff:808:808', '64:ff9b::808:808', '2002:808:808::1']) {
        expect(policy.forbidden(address), address).to.equal(undefined);
      }
    });
  });

  describe('allowed networks', function () {
    it('an allowed CIDR overrides a forbidden range, in IPv4 and every embedded form', function () {
      const policy = new AddressPolicy(['127.0.0.0/8']);
      for (const address of ['127.0.0.1', '127.1.2.3', '::ffff:127.0.0.1', '::ffff:7f00:1', '64:ff9b::7f00:1', '2002:7f00:1::']) {
        expect(policy.forbidden(address), address).to.equal(undefined);
      }
      expect(policy.forbidden('10.0.0.1')).to.match(/private/);
      expect(policy.forbidden('::1')).to.match(/loopback/);
      expect(policy.forbidden('::ffff:10.0.0.1')).to.match(/private/);
    });

    it('accepts single addresses and IPv6 networks', function () {
      const policy = new AddressPolicy(['10.1.2.3', 'fd00::/8', '::1']);
      expect(policy.forbidden('10.1.2.3')).to.equal(undefined);
      expect(policy.forbidden('10.1.2.4')).to.match(/private/);
      expect(policy.forbidden('fd12::1')).to.equal(undefined);
      expect(policy.forbidden('fd00:ec2::254')).to.equal(undefined);
      expect(policy.forbidden('fc00::1')).to.match(/unique-local/);
      expect(policy.forbidden('::1')).to.equal(undefined);
    });

    it('honours a prefix that does not end on a byte boundary', function () {
      const policy = new AddressPolicy(['172.16.0.0/13']);
      expect(policy.forbidden('172.23.255.255')).to.equal(undefined);
      expect(policy.forbidden('172.24.0.1')).to.match(/private/);
    });

    it('throws a plain Error naming a bad entry', function () {
      for (const entry of ['nope', '10.0.0.0/33', 'fe80::/129', '10.0.0.0/', '10.0.0.0/8/8', '10.0.0.0/-1', '10.0.0.0/x', '256.0.0.1', '127.1', 'fe80::1%eth0', '']) {
        let error: unknown;
        try {
          new AddressPolicy([entry]);
        } catch (caught) {
          error = caught;
        }
        expect(error, entry).to.be.instanceOf(Error).and.not.to.be.instanceOf(ForbiddenAddressError);
        expect((error as Error).message, entry).to.include(JSON.stringify(entry));
      }
    });
  });

  describe('checkLiteral()', function () {
    it('refuses a forbidden address written in the URL and never resolves a name (the connection\'s lookup does)', async function () {
      const policy = new AddressPolicy([], noResolver);
      for (const url of ['http://127.0.0.1:1/', 'http://[::1]/', 'http://[::ffff:127.0.0.1]/', 'http://169.254.169.254/']) {
        expect(await rejection(policy.checkLiteral(new URL(url))), url).to.be.instanceOf(ForbiddenAddressError);
      }
      await policy.checkLiteral(new URL('http://8.8.8.8/'));
      await policy.checkLiteral(new URL('http://hooks.test/'));
      await new AddressPolicy(['127.0.0.0/8'], noResolver).checkLiteral(new URL('http://127.0.0.1:1/'));
    });
  });

  describe('check()', function () {
    it('refuses forbidden IP-literal URLs without asking the resolver', async function () {
      const policy = new AddressPolicy([], noResolver);
      for (const [url, address] of [
        ['http://127.0.0.1:1/', '127.0.0.1'],
        ['http://[::1]/', '::1'],
        ['http://[::ffff:127.0.0.1]/', '::ffff:7f00:1'],
        ['https://169.254.169.254/latest/meta-data/', '169.254.169.254'],
        ['http://2130706433/', '127.0.0.1'],
      ] as const) {
        const error = await rejection(policy.check(new URL(url)));
        expect(error, url).to.be.instanceOf(ForbiddenAddressError);
        expect((error as ForbiddenAddressError).address, url).to.equal(address);
        expect((error as ForbiddenAddressError).code).to.equal('EADDRNOTALLOWED');
      }
    });

    it('passes public IP-literal URLs without asking the resolver', async function () {
      const policy = new AddressPolicy([], noResolver);
      await policy.check(new URL('https://8.8.8.8/hook'));
      await policy.check(new URL('https://[2606:4700::1111]/hook'));
    });

    it('refuses a name resolving to a loopback address', async function () {
      const policy = new AddressPolicy([], resolverOf({ 'hooks.example': ['127.0.0.1'] }));
      const error = (await rejection(policy.check(new URL('https://hooks.example/x')))) as ForbiddenAddressError;
      expect(error).to.be.instanceOf(ForbiddenAddressError);
      expect(error.name).to.equal('ForbiddenAddressError');
      expect(error.code).to.equal('EADDRNOTALLOWED');
      expect(error.host).to.equal('hooks.example');
      expect(error.address).to.equal('127.0.0.1');
      expect(error.reason).to.equal('loopback');
      expect(error.message).to.equal('webhook host hooks.example resolves to 127.0.0.1 (loopback); allow it with events.allowedNetworks');
    });

    it('refuses a name when any one of its addresses is forbidden', async function () {
      const policy = new AddressPolicy([], resolverOf({ 'mixed.example': ['93.184.216.34', '10.0.0.5'] }));
      const error = (await rejection(policy.check(new URL('https://mixed.example/')))) as ForbiddenAddressError;
      expect(error).to.be.instanceOf(ForbiddenAddressError);
      expect(error.address).to.equal('10.0.0.5');
      expect(error.reason).to.equal('private');
    });

    it('refuses a name resolving to nothing', async function () {
      const policy = new AddressPolicy([], resolverOf({ 'empty.example': [] }));
      const error = await rejection(policy.check(new URL('https://empty.example/')));
      expect(error).to.be.instanceOf(ForbiddenAddressError);
      expect((error as ForbiddenAddressError).host).to.equal('empty.example');
    });

    it('passes on the resolver error for a name that does not exist', async function () {
      const policy = new AddressPolicy([], resolverOf({}));
      const error = await rejection(policy.check(new URL('https://missing.example/')));
      expect(error).to.have.property('code', 'ENOTFOUND');
    });

    it('passes a name whose addresses are all public, or allowed', async function () {
      const resolver = resolverOf({ 'public.example': ['93.184.216.34', '2606:2800:220:1::1'], 'internal.example': ['10.1.2.3'] });
      await new AddressPolicy([], resolver).check(new URL('https://public.example/'));
      await new AddressPolicy(['10.0.0.0/8'], resolver).check(new URL('https://internal.example/'));
    });
  });

  describe('lookup', function () {
    const resolver = resolverOf({ 'dual.example': ['2606:2800:220:1::1', '93.184.216.34'], 'v4.example': ['93.184.216.34'], 'loop.example': ['127.0.0.1'] });
    const policy = new AddressPolicy([], resolver);

    it('answers every address with all: true', async function () {
      expect(await lookupVia(policy, 'dual.example', { all: true })).to.deep.equal([
        null,
        [
          { address: '2606:2800:220:1::1', family: 6 },
          { address: '93.184.216.34', family: 4 },
        ],
      ]);
    });

    it('answers the first address, honouring family, without all', async function () {
      expect(await lookupVia(policy, 'dual.example', {})).to.deep.equal([null, '2606:2800:220:1::1', 6]);
      expect(await lookupVia(policy, 'dual.example', { family: 4 })).to.deep.equal([null, '93.184.216.34', 4]);
      expect(await lookupVia(policy, 'dual.example', { family: 6, all: true })).to.deep.equal([null, [{ address: '2606:2800:220:1::1', family: 6 }]]);
    });

    it('fails like getaddrinfo when no address has the family asked for', async function () {
      const [error] = await lookupVia(policy, 'v4.example', { family: 6 });
      expect(error).to.have.property('code', 'ENOTFOUND');
    });

    it('calls back with ForbiddenAddressError for a forbidden address', async function () {
      const [error, ...rest] = await lookupVia(policy, 'loop.example', { all: true });
      expect(error).to.be.instanceOf(ForbiddenAddressError);
      expect(rest).to.deep.equal([]);
    });

    it('defeats DNS rebinding: check() passes, then the lookup for the connection is refused', async function () {
      let calls = 0;
      const rebinding: Resolver = async () => [calls++ === 0 ? { address: '93.184.216.34', family: 4 } : { address: '127.0.0.1', family: 4 }];
      const rebound = new AddressPolicy([], rebinding);
      await rebound.check(new URL('http://rebind.example/'));
      const [error] = await lookupVia(rebound, 'rebind.example', { all: true });
      expect(calls).to.equal(2);
      expect(error).to.be.instanceOf(ForbiddenAddressError);
      expect((error as ForbiddenAddressError).address).to.equal('127.0.0.1');
    });
  });

  describe('over a real socket (loopback only)', function () {
    let server: http.Server;
    let port: number;
    let requests = 0;
    const agents: Agent[] = [];

    before(async function () {
      server = http.createServer((_req, res) => {
        requests += 1;
        res.end('delivered');
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      port = (server.address() as AddressInfo).port;
    });

    after(async function () {
      await Promise.all(agents.map((agent) => agent.close()));
      await new Promise<void>((resolve) => server.close(() => resolve()));
    });

    function agentFor(allowed: string[]): Agent {
      const policy = new AddressPolicy(allowed, resolverOf({ 'hooks.test': ['127.0.0.1'] }));
      const agent = new Agent({ connect: { lookup: policy.lookup } });
      agents.push(agent);
      return agent;
    }

    it('refuses to connect to a name resolving to loopback, and the server sees nothing', async function () {
      requests = 0;
      const error = await rejection(request(`http://hooks.test:${port}/`, { dispatcher: agentFor([]) }));
      const cause = (error as { cause?: unknown }).cause;
      const refusal = error instanceof ForbiddenAddressError ? error : cause;
      expect(refusal).to.be.instanceOf(ForbiddenAddressError);
      expect(refusal).to.have.property('code', 'EADDRNOTALLOWED');
      expect(requests).to.equal(0);
    });

    it('connects when the operator allows the loopback network', async function () {
      requests = 0;
      const response = await request(`http://hooks.test:${port}/`, { dispatcher: agentFor(['127.0.0.0/8']) });
      expect(response.statusCode).to.equal(200);
      expect(await response.body.text()).to.equal('delivered');
      expect(requests).to.equal(1);
    });
  });
});
