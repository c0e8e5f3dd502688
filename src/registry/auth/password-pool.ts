import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

// Plain CommonJS run with `eval`, so the same code works from the TypeScript
// sources and from dist/ without a separate worker file to build.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const bcrypt = require(workerData.bcrypt);
parentPort.on('message', ({ id, password, hash }) => {
  let ok = false;
  try { ok = bcrypt.compareSync(password, hash); } catch { ok = false; }
  parentPort.postMessage({ id, ok });
});
`;

interface Job {
  id: number;
  password: string;
  hash: string;
  resolve: (ok: boolean) => void;
  reject: (err: unknown) => void;
}

/**
 * bcrypt compares on worker threads, so a burst of logins costs the threads'
 * CPU but never stalls the event loop that serves every other request.
 * `pending` counts queued and running checks.
 */
export class PasswordPool {
  readonly #threads: number;
  readonly #bcryptPath = createRequire(import.meta.url).resolve('bcryptjs');
  readonly #idle: Worker[] = [];
  readonly #busy = new Map<Worker, Job>();
  readonly #queue: Job[] = [];
  #started = 0;
  #nextId = 0;
  #closed = false;

  constructor(threads: number) {
    this.#threads = threads;
  }

  /** Starts the threads now, so the first login does not pay for it. */
  warm(): void {
    while (!this.#closed) {
      const worker = this.#spawn();
      if (!worker) return;
      this.#idle.push(worker);
    }
  }

  get pending(): number {
    return this.#queue.length + this.#busy.size;
  }

  compare(password: string, hash: string): Promise<boolean> {
    if (this.#closed) return Promise.reject(new Error('the password pool is closed'));
    return new Promise<boolean>((resolve, reject) => {
      this.#queue.push({ id: this.#nextId++, password, hash, resolve, reject });
      this.#dispatch();
    });
  }

  async close(): Promise<void> {
    this.#closed = true;
    const workers = [...this.#idle, ...this.#busy.keys()];
    for (const job of [...this.#queue, ...this.#busy.values()]) job.reject(new Error('the password pool is closed'));
    this.#queue.length = 0;
    this.#busy.clear();
    this.#idle.length = 0;
    await Promise.all(workers.map((worker) => worker.terminate()));
  }

  #dispatch(): void {
    while (this.#queue.length > 0) {
      const worker = this.#idle.pop() ?? this.#spawn();
      if (!worker) return;
      const job = this.#queue.shift() as Job;
      this.#busy.set(worker, job);
      worker.postMessage({ id: job.id, password: job.password, hash: job.hash });
    }
  }

  #spawn(): Worker | undefined {
    if (this.#started >= this.#threads) return undefined;
    this.#started++;
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { bcrypt: this.#bcryptPath } });
    worker.unref();
    worker.on('message', (message: { id: number; ok: boolean }) => {
      const job = this.#busy.get(worker);
      this.#busy.delete(worker);
      if (job?.id === message.id) job.resolve(message.ok);
      if (this.#closed) return;
      this.#idle.push(worker);
      this.#dispatch();
    });
    worker.on('error', (err) => this.#lose(worker, err));
    worker.on('exit', (code) => this.#lose(worker, new Error(`a password thread exited with code ${code}`)));
    return worker;
  }

  /** A thread died: fail its job, forget it, and let the next check start a new one. */
  #lose(worker: Worker, err: unknown): void {
    const job = this.#busy.get(worker);
    this.#busy.delete(worker);
    const idleIndex = this.#idle.indexOf(worker);
    if (idleIndex !== -1) this.#idle.splice(idleIndex, 1);
    if (!job && idleIndex === -1) return;
    this.#started--;
    job?.reject(err);
    if (!this.#closed) this.#dispatch();
  }
}
