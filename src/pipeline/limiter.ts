import { listenAbort, VideoAnalysisError } from "../errors.js";

/**
 * A counting semaphore: at most `limit` holders at once, the others wait in arrival order. The pipeline
 * gives one to every model, so each has at most `concurrency.max_in_flight` requests in flight.
 */
export class Limiter {
  private active = 0;
  private readonly waiting: Array<{ grant: () => void; reject: (e: unknown) => void }> = [];

  constructor(readonly limit: number) {
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`Limiter: limit must be a positive integer, got ${limit}`);
  }

  /** Requests running now. */
  get inFlight(): number {
    return this.active;
  }

  /** Requests waiting for a slot. */
  get queued(): number {
    return this.waiting.length;
  }

  /** Waits for a slot (CANCELLED when `signal` aborts first). Call the returned function once to give it back. */
  acquire(signal?: AbortSignal): Promise<() => void> {
    if (signal?.aborted) return Promise.reject(cancelled(signal));
    const release = once(() => this.release());
    if (this.active < this.limit) {
      this.active++;
      return Promise.resolve(release);
    }
    return new Promise((resolve, reject) => {
      const entry = {
        grant: () => {
          signal?.removeEventListener("abort", onAbort);
          this.active++;
          resolve(release);
        },
        reject,
      };
      const onAbort = () => {
        const i = this.waiting.indexOf(entry);
        if (i >= 0) this.waiting.splice(i, 1);
        reject(cancelled(signal!));
      };
      if (signal) listenAbort(signal, onAbort);
      this.waiting.push(entry);
    });
  }

  /** Runs `f` holding a slot. */
  async run<T>(f: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    const release = await this.acquire(signal);
    try {
      return await f();
    } finally {
      release();
    }
  }

  private release(): void {
    this.active--;
    const next = this.waiting.shift();
    if (next) next.grant();
  }
}

function once(f: () => void): () => void {
  let done = false;
  return () => {
    if (!done) {
      done = true;
      f();
    }
  };
}

/** The error a cancelled wait or call rejects with: the signal's own VideoAnalysisError, else CANCELLED. */
export function cancelled(signal: AbortSignal): VideoAnalysisError {
  const r: unknown = signal.reason;
  if (r instanceof VideoAnalysisError) return r;
  return new VideoAnalysisError("CANCELLED", "the run was cancelled", { cause: r });
}
