/**
 * `holdfast user …` and `holdfast token …`: the registry's users and access
 * tokens, in its metadata database. They need only the registry config's
 * `metadata` and `auth.usersFile`; a change reaches every running instance
 * within a second (docs/SECURITY.md, "Users and access tokens").
 */
import type { Command } from 'commander';
import { openDatabase } from '../metadata/db.ts';
import { AccountConflictError, AccountRuleError, AccountStore } from '../metadata/accounts/store.ts';
import { createAccessToken, createRobot, describeToken, TokenRequestError, TOKEN_ACTIONS, TOKEN_LIMITS } from '../registry/auth/access-tokens.ts';
import { hashPassword, readUsersFile, userSchema } from '../registry/auth/users.ts';
import { loadRegistryConfig, type RegistryConfig } from '../registry/config.ts';
import { accessScopeOf, describeAccess, GRANT_LIMITS, VISIBILITY_LIMITS, type AccessScope } from '../registry/auth/access.ts';
import { printJson, readConfig, readStdin } from './io.ts';
import { UsageError } from './usage-error.ts';

const MIN_PASSWORD_LENGTH = 8;

export function registerAccountCommands(cli: Command): void {
  const user = cli.command('user').description("manage the registry's users (in its metadata database)");
  user
    .command('list')
    .description('every user, with where it comes from and whether it is disabled (JSON)')
    .requiredOption('--config <file>', 'the registry config')
    .action(async (options: { config: string }) => {
      await withAccounts(options.config, async (accounts) => {
        printJson((await accounts.users()).map(({ passwordHash: _hash, ...shown }) => shown));
      });
    });
  user
    .command('add <username>')
    .description('add a user; the password is read on stdin')
    .requiredOption('--config <file>', 'the registry config')
    .requiredOption('--handle <handle>', 'the namespace the user owns: repositories under <handle>/')
    .requiredOption('--did <did>', 'the DID the user acts as at the hold')
    .action(async (username: string, options: { config: string; handle: string; did: string }) => {
      const password = await passwordFromStdin();
      const parsed = userSchema.omit({ passwordHash: true }).safeParse({ username, handle: options.handle, did: options.did });
      if (!parsed.success) throw new UsageError(parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`).join('; '));
      await withAccounts(options.config, async (accounts) => {
        await accounts.addUser({ ...parsed.data, passwordHash: await hashPassword(password) });
        console.log(`added ${username}, who owns ${options.handle}/`);
      });
    });
  user
    .command('passwd <username>')
    .description("set a user's password, read on stdin; their access tokens stay valid")
    .requiredOption('--config <file>', 'the registry config')
    .action(async (username: string, options: { config: string }) => {
      const password = await passwordFromStdin();
      await withAccounts(options.config, async (accounts) => {
        const found = await accounts.user(username);
        if (!found) throw new UsageError(`no user ${username}`);
        if (found.source === 'file') throw new UsageError(`${username} comes from the users file, which sets their password at each start; change it there`);
        if (found.owner !== undefined) throw new UsageError(`${username} is a robot account: it signs in with access tokens only`);
        await accounts.updateUser(username, { passwordHash: await hashPassword(password) });
        console.log(`password of ${username} changed`);
      });
    });
  for (const [name, disabled] of [
    ['disable', true],
    ['enable', false],
  ] as const) {
    user
      .command(`${name} <username>`)
      .description(disabled ? 'refuse the user: their password, access tokens and registry tokens stop working on every instance' : 'let a disabled user in again')
      .requiredOption('--config <file>', 'the registry config')
      .action(async (username: string, options: { config: string }) => {
        await withAccounts(options.config, async (accounts) => {
          if (!(await accounts.updateUser(username, { disabled }))) throw new UsageError(`no user ${username}`);
          console.log(`${username} ${disabled ? 'disabled' : 'enabled'}`);
        });
      });
  }

  const robot = cli.command('robot').description("robot accounts: <owner>+<name>, which sign in only with access tokens and may do only what they are granted");
  robot
    .command('create <owner> <name>')
    .description('add robot account <owner>+<name>; grant it access (holdfast access grant) and create its tokens (holdfast token create --user <owner>+<name>)')
    .requiredOption('--config <file>', 'the registry config')
    .action(async (owner: string, name: string, options: { config: string }) => {
      await withAccounts(options.config, async (accounts) => {
        const created = await createRobot(accounts, owner, name);
        console.log(`added robot account ${created.username}`);
      });
    });
  robot
    .command('list <owner>')
    .description("a user's robot accounts (JSON)")
    .requiredOption('--config <file>', 'the registry config')
    .action(async (owner: string, options: { config: string }) => {
      await withAccounts(options.config, async (accounts) => {
        printJson((await accounts.robots(owner)).map(({ passwordHash: _hash, ...shown }) => shown));
      });
    });
  robot
    .command('delete <robot>')
    .description('delete a robot account (owner+name) with its tokens and grants')
    .requiredOption('--config <file>', 'the registry config')
    .action(async (username: string, options: { config: string }) => {
      await withAccounts(options.config, async (accounts) => {
        if (!(await accounts.removeRobot(username))) throw new UsageError(`no robot account ${username}`);
        console.log(`robot account ${username} deleted`);
      });
    });

  const token = cli.command('token').description('manage access tokens: scoped secrets for CI, used as a password');
  token
    .command('create')
    .description('create an access token and print its secret, once (JSON)')
    .requiredOption('--config <file>', 'the registry config')
    .requiredOption('--user <username>', 'whose token it is (a user, or a robot account owner+name): it never does more than they may')
    .requiredOption('--name <name>', 'what it is for, e.g. "ci deploy"')
    .requiredOption('--repository <pattern...>', 'repositories it may act on: names, with * (one path part), ** (any) and ? wildcards')
    .option('--actions <list>', `a comma-separated subset of ${TOKEN_ACTIONS.join(',')}`, 'pull')
    .option('--expires-days <n>', `days until it expires (at most ${TOKEN_LIMITS.maxDays})`, String(TOKEN_LIMITS.defaultDays))
    .action(async (options: { config: string; user: string; name: string; repository: string[]; actions: string; expiresDays: string }) => {
      await withAccounts(options.config, async (accounts) => {
        const owner = await accounts.user(options.user);
        if (!owner) throw new UsageError(`no user ${options.user}`);
        const { secret, token: created } = await createAccessToken(accounts, {
          owner: options.user,
          name: options.name,
          repositories: options.repository,
          actions: options.actions.split(',').map((action) => action.trim()),
          expiresInDays: Number(options.expiresDays),
        });
        printJson({ ...describeToken(created), secret, note: 'the secret is shown this once; use it as the password of ' + options.user });
      });
    });
  token
    .command('list')
    .description("a user's access tokens, newest first, without their secrets (JSON)")
    .requiredOption('--config <file>', 'the registry config')
    .requiredOption('--user <username>', 'whose tokens')
    .action(async (options: { config: string; user: string }) => {
      await withAccounts(options.config, async (accounts) => {
        printJson((await accounts.tokens(options.user)).map((row) => describeToken(row)));
      });
    });
  token
    .command('revoke <id>')
    .description('revoke an access token: it, and registry tokens minted from it, stop working on every instance within a second')
    .requiredOption('--config <file>', 'the registry config')
    .action(async (id: string, options: { config: string }) => {
      await withAccounts(options.config, async (accounts) => {
        if (!(await accounts.revokeToken(id))) throw new UsageError(`no live token ${id}`);
        console.log(`token ${id} revoked`);
      });
    });
}

export function registerAccessCommands(cli: Command): void {
  const access = cli.command('access').description('who may pull and push: visibility and grants, by namespace (alice) or repository (alice/app)');
  access
    .command('show <name>')
    .description('the visibility set on a namespace or repository, what applies to it, and its grants (JSON)')
    .requiredOption('--config <file>', 'the registry config')
    .action(async (name: string, options: { config: string }) => {
      const scope = scopeOf(name);
      await withAccounts(options.config, async (accounts, config) => {
        printJson(await describeAccess(accounts, scope, config.auth.mode === 'token' && config.auth.defaultVisibility === 'private'));
      });
    });
  access
    .command('set <name> <visibility>')
    .description('make a namespace or repository public or private, or inherit (from its namespace, then auth.defaultVisibility)')
    .requiredOption('--config <file>', 'the registry config')
    .action(async (name: string, visibility: string, options: { config: string }) => {
      const scope = scopeOf(name);
      if (!['public', 'private', 'inherit'].includes(visibility)) throw new UsageError('visibility is public, private or inherit');
      await withAccounts(options.config, async (accounts) => {
        await accounts.setVisibility(scope.kind, scope.name, visibility === 'inherit' ? undefined : visibility === 'private', VISIBILITY_LIMITS);
        console.log(`${scope.kind} ${scope.name}: ${visibility}`);
      });
    });
  access
    .command('grant <name> <username> <access>')
    .description('let a user pull, or pull and push (push), in a namespace or repository')
    .requiredOption('--config <file>', 'the registry config')
    .action(async (name: string, username: string, level: string, options: { config: string }) => {
      const scope = scopeOf(name);
      if (level !== 'pull' && level !== 'push') throw new UsageError('access is pull or push');
      await withAccounts(options.config, async (accounts) => {
        if (!(await accounts.grant(scope.kind, scope.name, username, level, GRANT_LIMITS))) throw new UsageError(`no user ${username}`);
        console.log(`${username} may ${level === 'push' ? 'pull and push' : 'pull'} in ${scope.kind} ${scope.name}`);
      });
    });
  access
    .command('revoke <name> <username>')
    .description("take back a user's grant on a namespace or repository")
    .requiredOption('--config <file>', 'the registry config')
    .action(async (name: string, username: string, options: { config: string }) => {
      const scope = scopeOf(name);
      await withAccounts(options.config, async (accounts) => {
        if (!(await accounts.revokeGrant(scope.kind, scope.name, username))) throw new UsageError(`${username} has no grant on ${scope.kind} ${scope.name}`);
        console.log(`${username}'s grant on ${scope.kind} ${scope.name} revoked`);
      });
    });
}

function scopeOf(name: string): AccessScope {
  const scope = accessScopeOf(name);
  if (!scope) throw new UsageError(`not a namespace or repository name: ${name}`);
  return scope;
}

/** The accounts in the registry's database, with the users file brought in first, as a start would. */
async function withAccounts(file: string, work: (accounts: AccountStore, config: RegistryConfig) => Promise<void>): Promise<void> {
  const config = await readConfig(file, loadRegistryConfig);
  if (config.auth.mode !== 'token') throw new UsageError(`${file} has auth.mode "none": there are no users to manage`);
  const db = await openDatabase(config.metadata);
  try {
    const accounts = new AccountStore(db);
    if (config.auth.usersFile) await accounts.syncFileUsers(await readUsersFile(config.auth.usersFile));
    await work(accounts, config);
  } catch (err) {
    if (err instanceof AccountConflictError || err instanceof AccountRuleError || err instanceof TokenRequestError) throw new UsageError(err.message);
    throw err;
  } finally {
    await db.close();
  }
}

async function passwordFromStdin(): Promise<string> {
  const password = (await readStdin()).replace(/\r?\n$/, '');
  if (password.length < MIN_PASSWORD_LENGTH) throw new UsageError(`the password, read on stdin, needs at least ${MIN_PASSWORD_LENGTH} characters`);
  return password;
}
