import pino from 'pino';
import { expect } from 'chai';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify as toYaml } from 'yaml';
import { freePort } from '../../src/core/net.ts';
import { craneBinary, runTool } from '../support/clients.ts';
import { sharedMinio } from '../support/global-fixtures.ts';
import { generateSigningKey } from '../support/hold-harness.ts';
import { stopChild } from '../support/minio.ts';
import { buildImage } from '../support/oci-layout.ts';
import { NODE_FLAGS } from '../../src/cli/node-flags.ts';
import { cliNodeArgs } from '../support/stack.ts';
import { waitForHttp } from '../support/tools.ts';
import { SqlMetadataStore } from '../../src/metadata/oci/store.ts';
import { hashPassword } from '../../src/registry/auth/users.ts';
import { sha256 } from '../support/bytes.ts';

const MiB = 1024 * 1024;

/** Node replaces a process in place (bin/holdfast.js then needs no parent). */
const HAS_EXECVE = typeof (process as { execve?: unknown }).execve === 'function';

interface TreeProcess {
  pid: number;
  argv: string[];
  environ: string[];
}

/** `pid` and every process under it, parents first (Linux /proc). */
async function processTree(pid: number): Promise<TreeProcess[]> {
  const parents = new Map<number, number>();
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
    const parent = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (parent) parents.set(Number(entry), parent);
  }
  const tree = [pid];
  for (let index = 0; index < tree.length; index++) {
    for (const [child, parent] of parents) if (parent === tree[index]) tree.push(child);
  }
  const nulSeparated = async (file: string) => (await readFile(file, 'utf8')).split('\0').filter(Boolean);
  return Promise.all(tree.map(async (member) => ({ pid: member, argv: await nulSeparated(`/proc/${member}/cmdline`), environ: await nulSeparated(`/proc/${member}/environ`) })));
}

/** The processes of a CLI started as `command` (the first process, and the one bin/holdfast.js started, if any). */
async function commandProcesses(pid: number, command: string): Promise<TreeProcess[]> {
  return (await processTree(pid)).filter((member) => member.argv.includes(command));
}
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const NODE_MAJOR = Number(process.versions.node.split('.')[0]);

/**
 * Lines of a process's stderr that are Node warnings. Node 20 is past its end
 * of life, and the AWS SDK says so once per process (NodeVersionSupportWarning);
 * that one is expected there and nowhere else.
 */
function warnings(stderr: string): string[] {
  return stderr
    .split('\n')
    .filter((line) => /Warning/.test(line))
    .filter((line) => !(NODE_MAJOR < 22 && /NodeVersionSupportWarning/.test(line)));
}

interface CliProcess {
  child: ChildProcess;
  output(): { stdout: string; stderr: string };
  /** Stops the process (SIGTERM) and resolves once all its output has been read. */
  stop(): Promise<{ stdout: string; stderr: string }>;
}

/** `bin/holdfast.js` runs as a user runs it, with no Node flags; the sources as the test stacks run them. */
function spawnCli(entry: string, args: string[], env: Record<string, string> = {}): CliProcess {
  const file = path.join(ROOT, entry);
  const child = spawn(process.execPath, [...(entry === 'bin/holdfast.js' ? [file] : cliNodeArgs(file)), ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, LOG_LEVEL: 'warn', ...env },
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
  const output = () => ({ stdout, stderr });
  return {
    child,
    output,
    async stop() {
      await stopChild(child);
      await closed;
      return output();
    },
  };
}

// The sources through tsx (what the tests' stacks run), and bin/holdfast.js:
// what `npm start` and the installed `holdfast` command run, the JavaScript
// that `npm ci` compiled into dist/ (its `prepare` script).
for (const entry of ['src/cli/main.ts', 'bin/holdfast.js'] as const) {
  describe(`holdfast CLI from ${entry}`, function () {
    this.timeout(120_000);
    const built = entry === 'bin/holdfast.js';

    before(async function () {
      // Build now: dist/ may predate sources another change just edited.
      if (built) await runTool('npm', ['run', '--silent', 'build'], { ...process.env });
    });

    it('loads its built-in storage driver by name, as a registry config names it', async function () {
      const storage = `../../${built ? 'dist/registry/storage.js' : 'src/registry/storage.ts'}`;
      const { loadStorageDriver } = (await import(new URL(storage, import.meta.url).href)) as typeof import('../../src/registry/storage.ts');
      const options = { hold: { url: 'http://127.0.0.1:9', audience: 'did:web:hold.test' }, issuer: 'did:web:registry.test', privateKey: (await generateSigningKey()).privateKey };
      const driver = await loadStorageDriver('hold', options, { logger: pino({ level: 'silent' }) });
      expect(driver.blobStore).to.be.a('function');
      await driver.close();
    });

    it('`start` serves a push and a pull on a fresh data directory, with no warning printed', async function () {
      const work = await mkdtemp(path.join(os.tmpdir(), 'holdfast-start-'));
      const port = await freePort();
      const cli = spawnCli(entry, ['start', '--data', path.join(work, 'data'), '--port', String(port)]);
      const { child, output } = cli;
      try {
        await waitForHttp(`http://127.0.0.1:${port}/v2/`, child, { timeoutMs: 30_000, intervalMs: 200, stderr: () => output().stderr });
        expect(output().stdout).to.match(/authentication is off/);
        const image = await buildImage(path.join(work, 'image'), [6 * MiB + 1, 100]);
        const crane = await craneBinary();
        const reference = `127.0.0.1:${port}/me/app:v1`;
        await runTool(crane, ['push', '--insecure', image.dir, reference]);
        const pulled = path.join(work, 'pulled');
        await runTool(crane, ['pull', '--insecure', '--format', 'oci', reference, pulled]);
        expect(await runTool(crane, ['digest', '--insecure', reference])).to.equal(`${image.manifestDigest}\n`);
        if (built) {
          // Started once more with the flags it lacked (in place where Node has execve), with this environment.
          const processes = await commandProcesses(child.pid as number, 'start');
          expect(processes).to.have.length(HAS_EXECVE ? 1 : 2);
          const serving = processes.at(-1) as TreeProcess;
          expect(serving.argv.filter((arg) => NODE_FLAGS.includes(arg))).to.deep.equal([...NODE_FLAGS]);
          expect(serving.environ).to.include('LOG_LEVEL=warn');
        }
        expect(warnings((await cli.stop()).stderr)).to.deep.equal([]);
        expect(cli.child.exitCode, 'a SIGTERM drains and exits 0').to.equal(0);
      } finally {
        await cli.stop();
        await rm(work, { recursive: true, force: true });
      }
    });

    // The relaunch with Node flags is bin/holdfast.js's; where Node has execve no parent stays to be killed.
    if (built) {
      it('`start` with HOLDFAST_NODE_FLAGS=off runs in the process started, without the flags', async function () {
        const work = await mkdtemp(path.join(os.tmpdir(), 'holdfast-start-'));
        const port = await freePort();
        const cli = spawnCli(entry, ['start', '--data', path.join(work, 'data'), '--port', String(port)], { HOLDFAST_NODE_FLAGS: 'off' });
        try {
          await waitForHttp(`http://127.0.0.1:${port}/v2/`, cli.child, { timeoutMs: 30_000, intervalMs: 200, stderr: () => cli.output().stderr });
          const processes = await commandProcesses(cli.child.pid as number, 'start');
          expect(processes.map((member) => member.pid)).to.deep.equal([cli.child.pid]);
          expect((processes[0] as TreeProcess).argv.filter((arg) => NODE_FLAGS.includes(arg))).to.deep.equal([]);
        } finally {
          await cli.stop();
          await rm(work, { recursive: true, force: true });
        }
      });
    }
    if (built && !HAS_EXECVE) {
      it('`start` as a child of bin/holdfast.js (Node without execve) drains and exits when that parent is killed', async function () {
        const work = await mkdtemp(path.join(os.tmpdir(), 'holdfast-start-'));
        const port = await freePort();
        const cli = spawnCli(entry, ['start', '--data', path.join(work, 'data'), '--port', String(port)]);
        try {
          await waitForHttp(`http://127.0.0.1:${port}/v2/`, cli.child, { timeoutMs: 30_000, intervalMs: 200, stderr: () => cli.output().stderr });
          const serving = (await commandProcesses(cli.child.pid as number, 'start')).at(-1) as TreeProcess;
          expect(serving.pid).to.not.equal(cli.child.pid);
          cli.child.kill('SIGKILL');
          const deadline = Date.now() + 15_000;
          while (existsSync(`/proc/${serving.pid}`) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
          expect(existsSync(`/proc/${serving.pid}`), 'the child still runs').to.equal(false);
        } finally {
          await cli.stop();
          await rm(work, { recursive: true, force: true });
        }
      });
    }

    it(`\`hold\` on the S3 backend starts with no warning printed${NODE_MAJOR < 22 ? ' (but Node 20’s end of life)' : ''}`, async function () {
      const minio = await sharedMinio();
      const work = await mkdtemp(path.join(os.tmpdir(), 'holdfast-hold-start-'));
      const port = await freePort();
      await writeFile(
        path.join(work, 'hold.yaml'),
        toYaml({
          listen: { host: '127.0.0.1', port },
          identity: 'did:web:hold.test',
          owner: 'did:plc:alice0000000000000000',
          trustedIssuers: [{ issuer: 'did:web:registry.test', publicKey: (await generateSigningKey()).publicKey }],
          storage: {
            backend: 's3',
            s3: { provider: 'minio', endpoint: minio.endpoint, bucket: minio.bucket, region: minio.region, prefix: `cli-${process.pid}`, accessKeyId: minio.accessKeyId, secretAccessKey: minio.secretAccessKey },
          },
        }),
      );
      const identity = { service: 'hold', instance: `cli-hold-${entry}` } as const;
      const cli = spawnCli(entry, ['hold', '--config', path.join(work, 'hold.yaml')], { HOLDFAST_INSTANCE: identity.instance });
      try {
        await waitForHttp(`http://127.0.0.1:${port}/healthz`, cli.child, { timeoutMs: 30_000, stderr: () => cli.output().stderr, identity });
        const { stderr } = await cli.stop();
        expect(warnings(stderr)).to.deep.equal([]);
        // The check sees what the process prints: on Node 20 the SDK's own warning is there.
        if (NODE_MAJOR < 22) expect(stderr).to.match(/NodeVersionSupportWarning/);
      } finally {
        await cli.stop();
        await rm(work, { recursive: true, force: true });
      }
    });

    it('`retention --dry-run` lists each tag a pass would remove and why; `retention` removes them, and `recount` finds the totals in step', async function () {
      const dir = await mkdtemp(path.join(os.tmpdir(), 'holdfast-retention-cli-'));
      try {
        await writeFile(path.join(dir, 'key.pem'), (await generateSigningKey()).privateKey);
        const config = path.join(dir, 'registry.yaml');
        await writeFile(
          config,
          toYaml({
            listen: { host: '127.0.0.1', port: 5999 },
            storage: { module: 'hold', options: { hold: { url: 'http://127.0.0.1:9', audience: 'did:web:hold.test' }, issuer: 'did:web:registry.test', privateKeyFile: 'key.pem' } },
            metadata: { kind: 'sqlite', path: 'registry.db' },
            auth: { mode: 'none', did: 'did:plc:alice0000000000000000' },
            policies: { retention: [{ repositories: 'alice/**', keepLast: 1 }] },
          }),
        );
        const store = await SqlMetadataStore.open({ kind: 'sqlite', path: path.join(dir, 'registry.db') });
        const layer = `sha256:${'1'.repeat(64)}`;
        await store.linkBlob('alice/ci', { digest: layer, size: 1 });
        for (const tag of ['c', 'b', 'a']) {
          const content = Buffer.from(JSON.stringify({ schemaVersion: 2, tag }));
          await store.putManifest({ repository: 'alice/ci', digest: sha256(content), mediaType: 'application/vnd.oci.image.manifest.v1+json', content, blobs: [layer], manifests: [] }, tag);
          await new Promise((resolve) => setTimeout(resolve, 5));
        }
        await store.close();
        const cli = async (...args: string[]) => JSON.parse(await runTool(process.execPath, [...(built ? [path.join(ROOT, entry)] : cliNodeArgs(path.join(ROOT, entry))), ...args, '--config', config])) as unknown;
        const run = async (...args: string[]) => (await cli('retention', ...args)) as { items: { tag?: string; action: string; reason: string; pattern: string }[] };
        const dry = await run('--dry-run');
        expect(dry.items.map((item) => [item.tag, item.action, item.pattern, item.reason])).to.deep.equal([
          ['b', 'would-delete', 'alice/**', 'not among the 1 most recently pushed tags'],
          ['c', 'would-delete', 'alice/**', 'not among the 1 most recently pushed tags'],
        ]);
        expect((await run()).items.map((item) => `${item.tag} ${item.action}`)).to.deep.equal(['b deleted', 'c deleted']);
        expect((await run()).items).to.deep.equal([]);
        // The kept totals moved with what retention deleted.
        expect(await cli('recount')).to.deep.equal({ tagCounts: { drifted: 0, items: [] }, storedBytes: { drifted: 0, items: [] }, fixed: false });
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });

    /** A short command to its end: exit status, stdout, and stderr without Node 20's end-of-life notice. */
    const runCli = (args: string[], input?: string) => {
      const result = spawnSync(process.execPath, [...(built ? [path.join(ROOT, entry)] : cliNodeArgs(path.join(ROOT, entry))), ...args], { encoding: 'utf8', cwd: os.tmpdir(), timeout: 60_000, ...(input === undefined ? {} : { input }) });
      return { status: result.status, stdout: result.stdout, stderr: result.stderr.split('\n').filter((line) => line && !/NodeVersionSupportWarning|node >=22|a\.co\/|upgrade to node|trace-warnings|versions published|will require node|To continue receiving|More information can be found|^$/.test(line)).join('\n') };
    };

    it('follows CLI conventions: --help on every command, --version, and an operator\'s mistake in one line with exit code 2 and no stack trace', async function () {
      const run = (...args: string[]) => runCli(args);
      const help = run('--help');
      expect(help.status).to.equal(0);
      const commands = ['start', 'registry', 'hold', 'gc', 'recount', 'retention', 'quota', 'hold-janitor', 'keygen', 'hash-password', 'user', 'token', 'access', 'robot', 'events'];
      for (const command of commands) expect(help.stdout).to.match(new RegExp(`^  ${command}\\b`, 'm'));
      for (const command of [...commands, 'user add', 'user passwd', 'user disable', 'user list', 'token create', 'token list', 'token revoke', 'access show', 'access set', 'access grant', 'access revoke', 'robot create', 'robot list', 'robot delete', 'events list', 'events redeliver', 'events purge']) {
        const own = run(...command.split(' '), '--help');
        expect(own.status, command).to.equal(0);
        expect(own.stdout, command).to.include(`Usage: holdfast ${command}`);
      }
      const version = run('--version');
      expect(version.stdout.trim()).to.equal((JSON.parse(await readFile(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version);
      const missing = run('registry', '--config', './registry.yaml');
      expect([missing.status, missing.stderr]).to.deep.equal([2, 'holdfast: config file not found: ./registry.yaml']);
      for (const args of [['frob'], ['gc'], ['start', '--port', 'x'], ['registry', '--config']]) {
        const wrong = run(...args);
        expect(wrong.status, args.join(' ')).to.be.oneOf([1, 2]);
        expect(wrong.stderr, args.join(' ')).not.to.match(/^\s+at |"level"/m);
        expect(wrong.stderr.split('\n')[0], args.join(' ')).to.match(/^(error|holdfast): /);
      }
    });

    it('`user` and `token` manage accounts in the database: handles stay unique, file users stay the file\'s, a secret is shown once and stored as a hash', async function () {
      const dir = await mkdtemp(path.join(os.tmpdir(), 'holdfast-accounts-'));
      try {
        const keys = await generateSigningKey();
        await writeFile(path.join(dir, 'key.pem'), keys.privateKey);
        await writeFile(path.join(dir, 'users.yaml'), toYaml({ users: [{ username: 'alice', handle: 'alice', did: 'did:plc:alice0000000000000000', passwordHash: await hashPassword('alice-password', 4) }] }));
        const config = path.join(dir, 'registry.yaml');
        await writeFile(
          config,
          toYaml({
            storage: { module: 'hold', options: { hold: { url: 'http://127.0.0.1:9', audience: 'did:web:hold.test' }, issuer: 'did:web:registry.test', privateKeyFile: 'key.pem' } },
            metadata: { kind: 'sqlite', path: 'registry.db' },
            auth: { mode: 'token', signingKeyFile: 'key.pem', usersFile: 'users.yaml', anonymousDid: 'did:web:anonymous.test' },
          }),
        );
        const cli = (args: string[], input?: string) => runCli([...args, '--config', config], input);
        const users = () => JSON.parse(cli(['user', 'list']).stdout) as { username: string; handle: string; source: string; disabled: boolean; passwordHash?: string }[];
        expect(users().map((user) => [user.username, user.source, user.disabled, user.passwordHash])).to.deep.equal([['alice', 'file', false, undefined]]);

        expect(cli(['user', 'add', 'mallory', '--handle', 'alice', '--did', 'did:plc:mallory00000000000000'], 'mallory-password\n')).to.deep.include({ status: 2, stderr: 'holdfast: alice is already the handle of another user (alice)' });
        expect(cli(['user', 'add', 'bob', '--handle', 'Bob/x', '--did', 'did:plc:bob00000000000000000000'], 'bob-password\n').status).to.equal(2);
        expect(cli(['user', 'add', 'bob', '--handle', 'bob', '--did', 'did:plc:bob00000000000000000000'], 'short\n').stderr).to.match(/at least 8 characters/);
        expect(cli(['user', 'add', 'bob', '--handle', 'bob', '--did', 'did:plc:bob00000000000000000000'], 'bob-password\n')).to.deep.include({ status: 0 });
        expect(cli(['user', 'passwd', 'alice'], 'new-alice-password\n')).to.deep.include({ status: 2 });
        expect(cli(['user', 'passwd', 'alice'], 'new-alice-password\n').stderr).to.match(/comes from the users file/);
        expect(cli(['user', 'passwd', 'bob'], 'new-bob-password\n').status).to.equal(0);

        const created = cli(['token', 'create', '--user', 'bob', '--name', 'ci', '--repository', 'bob/*', '--actions', 'pull,push', '--expires-days', '7']);
        expect(created.status, created.stderr).to.equal(0);
        const token = JSON.parse(created.stdout) as { id: string; secret: string; repositories: string[]; actions: string[]; state: string; expiresAt: string };
        expect(token).to.deep.include({ repositories: ['bob/*'], actions: ['pull', 'push'], state: 'live' });
        expect(Date.parse(token.expiresAt) - Date.now()).to.be.within(6.9 * 86_400_000, 7 * 86_400_000);
        const listed = cli(['token', 'list', '--user', 'bob']).stdout;
        expect(listed).to.include(token.id);
        expect(listed).not.to.include(token.secret.slice(17));
        expect(listed).not.to.include('secretHash');
        const database = await readFile(path.join(dir, 'registry.db'));
        expect(database.includes(Buffer.from(token.secret.slice(17))), 'the secret is nowhere in the database').to.equal(false);
        expect(cli(['token', 'create', '--user', 'bob', '--name', 'x', '--repository', '../etc', '--actions', 'pull']).stderr).to.match(/^holdfast: not a repository pattern/);
        expect(cli(['token', 'create', '--user', 'bob', '--name', 'x', '--repository', 'bob/*', '--actions', 'pull,admin']).stderr).to.match(/^holdfast: a token's actions are some of pull, push, delete/);
        expect(cli(['token', 'create', '--user', 'bob', '--name', 'x', '--repository', 'bob/*', '--expires-days', '9999']).stderr).to.match(/^holdfast: a token expires within/);
        expect(cli(['token', 'revoke', token.id]).status).to.equal(0);
        expect(cli(['token', 'revoke', token.id])).to.deep.include({ status: 2, stderr: `holdfast: no live token ${token.id}` });
        expect((JSON.parse(cli(['token', 'list', '--user', 'bob']).stdout) as { state: string }[]).map((row) => row.state)).to.deep.equal(['revoked']);

        expect(cli(['access', 'set', 'alice/app', 'private']).status).to.equal(0);
        expect(cli(['access', 'grant', 'alice', 'bob', 'push']).status).to.equal(0);
        expect(cli(['access', 'grant', 'alice/app', 'nobody', 'pull'])).to.deep.include({ status: 2, stderr: 'holdfast: no user nobody' });
        expect(cli(['access', 'grant', 'alice/app', 'bob', 'admin'])).to.deep.include({ status: 2, stderr: 'holdfast: access is pull or push' });
        expect(cli(['access', 'set', '../etc', 'private']).stderr).to.equal('holdfast: not a namespace or repository name: ../etc');
        expect(JSON.parse(cli(['access', 'show', 'alice/app']).stdout)).to.deep.include({ kind: 'repository', name: 'alice/app', set: 'private', effective: 'private', grants: [] });
        expect((JSON.parse(cli(['access', 'show', 'alice']).stdout) as { grants: { user: string; access: string }[] }).grants.map((grant) => `${grant.user} ${grant.access}`)).to.deep.equal(['bob push']);
        expect(cli(['access', 'revoke', 'alice', 'bob']).status).to.equal(0);
        expect(cli(['access', 'revoke', 'alice', 'bob']).status).to.equal(2);
        expect(JSON.parse(cli(['access', 'show', 'alice']).stdout)).to.deep.include({ set: 'inherit', effective: 'public', grants: [] });

        expect(cli(['robot', 'create', 'bob', 'ci']).stdout.trim()).to.equal('added robot account bob+ci');
        expect(cli(['robot', 'create', 'bob', 'ci']).stderr).to.equal('holdfast: bob+ci is already a user name');
        expect(cli(['robot', 'create', 'bob+ci', 'x']).stderr).to.equal('holdfast: no user bob+ci to own a robot account');
        expect(cli(['robot', 'create', 'bob', 'Bad Name']).status).to.equal(2);
        expect((JSON.parse(cli(['robot', 'list', 'bob']).stdout) as { username: string; owner: string }[]).map((row) => `${row.username} ${row.owner}`)).to.deep.equal(['bob+ci bob']);
        expect(cli(['user', 'passwd', 'bob+ci'], 'robot-password\n').stderr).to.match(/is a robot account/);
        expect(JSON.parse(cli(['token', 'create', '--user', 'bob+ci', '--name', 'ci', '--repository', 'bob/**', '--actions', 'pull']).stdout)).to.deep.include({ owner: 'bob+ci' });
        expect(cli(['robot', 'delete', 'bob+ci']).status).to.equal(0);
        expect(cli(['token', 'list', '--user', 'bob+ci']).stdout.trim()).to.equal('[]');

        expect(cli(['user', 'disable', 'bob']).status).to.equal(0);
        expect(users().map((user) => [user.username, user.disabled])).to.deep.equal([['alice', false], ['bob', true]]);
        expect(cli(['user', 'disable', 'nobody'])).to.deep.include({ status: 2, stderr: 'holdfast: no user nobody' });
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
  });
}
