import { Worker } from "node:worker_threads";

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
}

/**
 * One worker thread and the calls it has yet to answer (by id); it keeps the process alive only while
 * it has some. The embedded backend's onnxruntime workers and the pipeline's fitting workers use it.
 */
export class WorkerLink<M = unknown> {
  readonly worker: Worker;
  readonly pending = new Map<number, Pending>();

  /**
   * `onMessage` gets every message of the worker; `onFailure` its error or an exit while `isClosed()`
   * is false. The worker inherits node's flags (--cpu-prof and the like), except --input-type, which
   * node refuses for a worker's file; where node refuses a flag for workers at all, it starts without.
   */
  constructor(file: URL, workerData: unknown, onMessage: (link: WorkerLink<M>, msg: M) => void, onFailure: (e: Error) => void, isClosed: () => boolean) {
    try {
      this.worker = new Worker(file, { workerData, execArgv: process.execArgv.filter((a) => !a.startsWith("--input-type")) });
    } catch (e) {
      if ((e as { code?: string }).code !== "ERR_WORKER_INVALID_EXEC_ARGV") throw e;
      this.worker = new Worker(file, { workerData, execArgv: [] });
    }
    this.worker.unref();
    this.worker.on("message", (msg: M) => onMessage(this, msg));
    this.worker.on("error", onFailure);
    this.worker.on("exit", (code) => {
      if (!isClosed()) onFailure(new Error(`exit code ${code}`));
    });
  }

  /** Posts a call and waits for the answer that carries its id (the receiver resolves it through take()). */
  call<T>(id: number, msg: unknown): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (this.pending.size === 0) this.worker.ref();
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      try {
        this.worker.postMessage(msg);
      } catch (e) {
        this.take(id);
        reject(e as Error);
      }
    });
  }

  /** The pending call of this id, removed. */
  take(id: number): Pending | undefined {
    const p = this.pending.get(id);
    if (p && this.pending.delete(id) && this.pending.size === 0) this.worker.unref();
    return p;
  }

  /** Rejects every pending call. */
  failAll(e: Error): void {
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
    this.worker.unref();
  }
}
