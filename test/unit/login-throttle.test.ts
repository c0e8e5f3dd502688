import { expect } from 'chai';
import { LoginThrottle, LoginThrottledError } from '../../src/registry/auth/login-throttle.ts';

const LIMITS = { failuresPerAddress: 3, failuresPerUser: 3, windowSeconds: 60, concurrentPerAddress: 2, maxQueued: 10 };

function fail(throttle: LoginThrottle, address: string, user: string): void {
  throttle.begin(address, user, 0)(true);
}

describe('login throttle', function () {
  it('refuses an address after its failures, until the window moves on', function () {
    let now = 0;
    const throttle = new LoginThrottle(LIMITS, () => now);
    for (let index = 0; index < 3; index++) fail(throttle, '192.0.2.1', `user${index}`);
    const refused = (() => {
      try {
        throttle.begin('192.0.2.1', 'someone', 0);
      } catch (err) {
        return err;
      }
    })();
    expect(refused).to.be.instanceOf(LoginThrottledError);
    expect((refused as LoginThrottledError).retryAfterSeconds).to.equal(60);
    now = 61_000;
    expect(() => throttle.begin('192.0.2.1', 'someone', 0)(false)).not.to.throw();
  });

  it("does not let failures elsewhere lock a user out of an address they signed in from", function () {
    const throttle = new LoginThrottle(LIMITS, () => 0);
    throttle.begin('192.0.2.10', 'alice', 0)(false);
    for (let index = 0; index < 3; index++) fail(throttle, `198.51.100.${index}`, 'alice');
    expect(() => throttle.begin('203.0.113.9', 'alice', 0)).to.throw(LoginThrottledError, /for this user/);
    expect(() => throttle.begin('192.0.2.10', 'alice', 0)(false)).not.to.throw();
  });

  it('counts an IPv6 client by its /64', function () {
    const throttle = new LoginThrottle(LIMITS, () => 0);
    for (let index = 1; index <= 3; index++) fail(throttle, `2001:db8:1:2::${index}`, `user${index}`);
    expect(() => throttle.begin('2001:db8:1:2:ffff::9', 'other', 0)).to.throw(LoginThrottledError, /address/);
    expect(() => throttle.begin('2001:db8:1:3::1', 'other', 0)(false)).not.to.throw();
  });

  it('bounds checks in progress per address and in all', function () {
    const throttle = new LoginThrottle(LIMITS, () => 0);
    throttle.begin('192.0.2.1', 'a', 0);
    throttle.begin('192.0.2.1', 'b', 0);
    expect(() => throttle.begin('192.0.2.1', 'c', 0)).to.throw(LoginThrottledError, /in progress from this address/);
    expect(() => throttle.begin('192.0.2.2', 'c', 10)).to.throw(LoginThrottledError, /in progress/);
  });
});
