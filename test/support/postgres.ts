import { execFile, spawn } from 'node:child_process';
import { chown, mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { findOnPath, freePort, isExecutable } from './tools.ts';

const run = promisify(execFile);

export interface RunningPostgres {
  /** Connection URL of a fresh database on this server. */
  createDatabase(name?: string): Promise<string>;
  stop(): Promise<void>;
}

/**
 * Starts PostgreSQL from Debian's packages on a free loopback port with a
 * temporary data directory, installing the package if it is missing.
 */
export async function startPostgres(): Promise<RunningPostgres> {
  const bin = await findPostgresBin();
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'holdfast-pg-'));
  const asRoot = process.getuid?.() === 0;
  const wrap = (command: string, args: string[]): [string, string[]] => (asRoot ? ['runuser', ['-u', 'postgres', '--', command, ...args]] : [command, args]);
  if (asRoot) {
    const { stdout } = await run('id', ['-u', 'postgres']);
    const { stdout: gid } = await run('id', ['-g', 'postgres']);
    await chown(dataDir, Number(stdout.trim()), Number(gid.trim()));
  }
  const pgdata = path.join(dataDir, 'data');
  await run(...wrap(path.join(bin, 'initdb'), ['-D', pgdata, '-A', 'trust', '-U', 'holdfast', '--no-sync', '-E', 'UTF8']));
  const port = await freePort();
  const options = `-p ${port} -k ${dataDir} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200`;
  await run(...wrap(path.join(bin, 'pg_ctl'), ['-D', pgdata, '-o', options, '-l', path.join(dataDir, 'log'), '-w', '-t', '60', 'start']));
  const admin = `postgres://holdfast@127.0.0.1:${port}/postgres`;
  let counter = 0;
  return {
    async createDatabase(name = `holdfast_${process.pid}_${++counter}`) {
      const client = new pg.Client({ connectionString: admin });
      await client.connect();
      try {
        await client.query(`CREATE DATABASE ${name}`);
      } finally {
        await client.end();
      }
      return `postgres://holdfast@127.0.0.1:${port}/${name}`;
    },
    async stop() {
      await run(...wrap(path.join(bin, 'pg_ctl'), ['-D', pgdata, '-m', 'immediate', '-w', 'stop'])).catch(() => {});
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** The PostgreSQL server binaries, installed with apt when missing (minutes on a fresh machine). */
export async function findPostgresBin(): Promise<string> {
  const fromEnv = process.env.PG_BIN;
  if (fromEnv && (await isExecutable(path.join(fromEnv, 'initdb')))) return fromEnv;
  const debian = await debianBin();
  if (debian) return debian;
  const onPath = await findOnPath('initdb');
  if (onPath) return path.dirname(onPath);
  console.error('[harness] installing postgresql from Debian packages (first run only)');
  await new Promise<void>((resolve, reject) => {
    const child = spawn('sh', ['-c', 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql'], { stdio: 'ignore' });
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`apt-get install postgresql exited ${code}`))));
  });
  const installed = await debianBin();
  if (!installed) throw new Error('postgresql installed but no initdb found under /usr/lib/postgresql');
  return installed;
}

async function debianBin(): Promise<string | undefined> {
  const versions = (await readdir('/usr/lib/postgresql').catch(() => [])).sort((a, b) => Number(b) - Number(a));
  for (const version of versions) {
    const bin = `/usr/lib/postgresql/${version}/bin`;
    if (await isExecutable(path.join(bin, 'initdb'))) return bin;
  }
  return undefined;
}
