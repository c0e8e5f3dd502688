import { expect } from 'chai';
import type { RepositorySnapshot } from '../../src/metadata/oci/retention.ts';
import { parseRegistryConfig } from '../../src/registry/config.ts';
import { compileGlob } from '../../src/registry/policies/glob.ts';
import { ImmutableTags } from '../../src/registry/policies/immutable.ts';
import { planRetention, type RetentionRule } from '../../src/registry/policies/retention-plan.ts';

const NOW = new Date('2026-12-01T00:00:00.000Z');
const daysAgo = (days: number) => new Date(NOW.getTime() - days * 86_400_000).toISOString();
const hoursAgo = (hours: number) => new Date(NOW.getTime() - hours * 3_600_000).toISOString();
const rule = (fields: Partial<RetentionRule>): RetentionRule => ({ repositories: '**', keepTags: [], ...fields });
const digest = (name: string) => `sha256:${name.padEnd(64, '0')}`;

/** Tags `t0`…`t{n-1}`, `t0` the newest, each a day older than the one before, on their own manifests. */
function tagged(n: number): RepositorySnapshot {
  const tags = Array.from({ length: n }, (_, i) => ({ tag: `t${i}`, digest: digest(`m${i}`), updatedAt: daysAgo(i) }));
  return { tags, manifests: tags.map((tag) => ({ digest: tag.digest, size: 100, createdAt: tag.updatedAt })), children: [] };
}

const removedTags = (plan: ReturnType<typeof planRetention>) => plan.tags.map((item) => item.row.tag).sort();

describe('policy patterns', function () {
  it('* stays inside a path segment, ** crosses them, ? is one character, . is literal', function () {
    expect(compileGlob('alice/*')('alice/app')).to.equal(true);
    expect(compileGlob('alice/*')('alice/team/app')).to.equal(false);
    expect(compileGlob('alice/**')('alice/team/app')).to.equal(true);
    expect(compileGlob('v?.*')('v1.2')).to.equal(true);
    expect(compileGlob('v1.2')('v1x2')).to.equal(false);
    expect(compileGlob('latest')('latest-1')).to.equal(false);
  });

  it('matches in time linear in the pattern and the name: a pattern built to backtrack answers at once', function () {
    const hostile = `${'**a'.repeat(40)}**b`;
    const name = 'a'.repeat(250);
    const started = performance.now();
    expect(compileGlob(hostile)(name)).to.equal(false);
    expect(compileGlob(`${'*a'.repeat(40)}*b`)(name)).to.equal(false);
    expect(compileGlob(`${'**a'.repeat(40)}**`)(name)).to.equal(true);
    // A backtracking matcher takes minutes here; the limit only catches one.
    expect(performance.now() - started).to.be.below(1000);
    expect(compileGlob('**/app')('a/b/c/app')).to.equal(true);
    expect(compileGlob('*/app')('a/b/app')).to.equal(false);
    expect(compileGlob('a/**')('a')).to.equal(false);
    expect(compileGlob('a**')('a')).to.equal(true);
    expect(compileGlob('')('')).to.equal(true);
    expect(compileGlob('?')('/')).to.equal(false);
  });

  it('immutable rules apply per repository, and several rules add up', function () {
    const rules = new ImmutableTags([
      { repositories: 'alice/*', tags: ['v*'] },
      { repositories: 'alice/app', tags: ['stable'] },
    ]);
    const app = rules.in('alice/app');
    expect([app?.('v1'), app?.('stable'), app?.('latest')]).to.deep.equal([true, true, false]);
    expect(rules.in('bob/app')).to.equal(undefined);
  });

  it('the config refuses a pattern with other characters and a retention rule that removes nothing', function () {
    const base = { storage: { module: 'hold' }, metadata: { kind: 'sqlite' }, auth: { mode: 'none', did: 'did:plc:alice' } };
    expect(() => parseRegistryConfig({ ...base, policies: { immutableTags: [{ repositories: 'alice/(.*)', tags: ['v*'] }] } })).to.throw(/pattern/);
    expect(() => parseRegistryConfig({ ...base, policies: { retention: [{ repositories: 'ci/**' }] } })).to.throw(/retention rule needs/);
    expect(parseRegistryConfig({ ...base, policies: { retention: [{ repositories: 'ci/**', keepLast: 3 }] } }).policies.retention[0]?.keepTags).to.deep.equal([]);
  });
});

describe('retention plans', function () {
  it('keepLast keeps the N most recently pushed tags and removes the rest', function () {
    const plan = planRetention(rule({ keepLast: 2 }), tagged(5), NOW);
    expect(removedTags(plan)).to.deep.equal(['t2', 't3', 't4']);
    expect(plan.tags[0]?.reason).to.equal('not among the 2 most recently pushed tags');
  });

  it('keepLast 0 with olderThanDays removes only the old tags', function () {
    expect(removedTags(planRetention(rule({ keepLast: 0, olderThanDays: 3 }), tagged(5), NOW))).to.deep.equal(['t4']);
    expect(removedTags(planRetention(rule({ olderThanDays: 2 }), tagged(5), NOW))).to.deep.equal(['t3', 't4']);
  });

  it('keepTags alone removes every tag that matches none of its patterns', function () {
    const snapshot = tagged(3);
    snapshot.tags[2] = { ...(snapshot.tags[2] as RepositorySnapshot['tags'][number]), tag: 'v1.0' };
    const plan = planRetention(rule({ keepTags: ['v*', 'latest'] }), snapshot, NOW);
    expect(removedTags(plan)).to.deep.equal(['t0', 't1']);
    expect(plan.tags[0]?.reason).to.equal('matches none of keepTags (v*, latest)');
  });

  it('keepTags, keepLast and olderThanDays each keep a tag; a tag goes only when none does', function () {
    const snapshot = tagged(6);
    snapshot.tags[5] = { ...(snapshot.tags[5] as RepositorySnapshot['tags'][number]), tag: 'release' };
    expect(removedTags(planRetention(rule({ keepTags: ['release'], keepLast: 1, olderThanDays: 2 }), snapshot, NOW))).to.deep.equal(['t3', 't4']);
  });

  it('never removes an immutable tag', function () {
    expect(removedTags(planRetention(rule({ keepLast: 1 }), tagged(4), NOW, (tag) => tag === 't3'))).to.deep.equal(['t1', 't2']);
  });

  it('tags pushed at the same moment rank by name, so a plan is the same every time', function () {
    const snapshot = tagged(3);
    for (const tag of snapshot.tags) tag.updatedAt = NOW.toISOString();
    expect(removedTags(planRetention(rule({ keepLast: 1 }), snapshot, NOW))).to.deep.equal(['t1', 't2']);
  });

  it('without untaggedAfterHours no manifest is removed, even one whose tags go', function () {
    expect(planRetention(rule({ keepLast: 1 }), tagged(3), NOW).manifests).to.deep.equal([]);
  });

  describe('untagged manifests', function () {
    // index I (untagged, old) lists a and b; a has referrer s (a signature) which has its own referrer r;
    // k is kept by tag `keep` and has referrer ks; o is an old untagged orphan; y is young and untagged;
    // z is a referrer of a subject that was never pushed.
    const snapshot: RepositorySnapshot = {
      tags: [
        { tag: 'keep', digest: digest('k'), updatedAt: daysAgo(40) },
        { tag: 'old', digest: digest('d'), updatedAt: daysAgo(40) },
      ],
      manifests: [
        { digest: digest('I'), size: 1, createdAt: daysAgo(10) },
        { digest: digest('a'), size: 1, createdAt: daysAgo(10) },
        { digest: digest('b'), size: 1, createdAt: daysAgo(10) },
        { digest: digest('s'), size: 1, createdAt: daysAgo(10), subject: digest('a') },
        { digest: digest('r'), size: 1, createdAt: daysAgo(10), subject: digest('s') },
        { digest: digest('k'), size: 1, createdAt: daysAgo(40) },
        { digest: digest('ks'), size: 1, createdAt: daysAgo(40), subject: digest('k') },
        { digest: digest('d'), size: 1, createdAt: daysAgo(40) },
        { digest: digest('o'), size: 1, createdAt: daysAgo(2) },
        { digest: digest('y'), size: 1, createdAt: hoursAgo(1) },
        { digest: digest('z'), size: 1, createdAt: daysAgo(2), subject: digest('never') },
      ],
      children: [
        { parent: digest('I'), child: digest('a') },
        { parent: digest('I'), child: digest('b') },
      ],
    };
    const order = (plan: ReturnType<typeof planRetention>) => plan.manifests.map((item) => item.row.digest);

    it('removes the untagged, what only they keep, and what lost its tags; keeps the tagged, their referrers and the young', function () {
      const plan = planRetention(rule({ keepTags: ['keep'], untaggedAfterHours: 24 }), snapshot, NOW);
      expect(removedTags(plan)).to.deep.equal(['old']);
      expect([...order(plan)].sort()).to.deep.equal(['I', 'a', 'b', 'd', 'o', 'r', 's', 'z'].map(digest).sort());
      const reasons = new Map(plan.manifests.map((item) => [item.row.digest, item.reason]));
      expect(reasons.get(digest('a'))).to.equal('listed only by indexes this rule removes');
      expect(reasons.get(digest('s'))).to.equal(`a referrer of ${digest('a')}, which this rule removes`);
      expect(reasons.get(digest('d'))).to.equal('its tags are removed by this rule and it was pushed more than 24 h ago');
      expect(reasons.get(digest('z'))).to.match(/subject .* is not in the repository/);
    });

    it('orders every index before what it lists and every subject before its referrers', function () {
      const list = order(planRetention(rule({ keepTags: ['keep'], untaggedAfterHours: 24 }), snapshot, NOW));
      const before = (first: string, then: string) => expect(list.indexOf(digest(first)), `${first} before ${then}`).to.be.lessThan(list.indexOf(digest(then)));
      before('I', 'a');
      before('I', 'b');
      before('a', 's');
      before('s', 'r');
    });

    it('a kept index keeps what it lists and their referrers, however old', function () {
      const withTag = { ...snapshot, tags: [...snapshot.tags, { tag: 'multi', digest: digest('I'), updatedAt: daysAgo(1) }] };
      const list = order(planRetention(rule({ keepTags: ['keep', 'multi'], untaggedAfterHours: 24 }), withTag, NOW));
      expect([...list].sort()).to.deep.equal(['d', 'o', 'z'].map(digest).sort());
    });
  });
});
