import { listenAbort } from "../errors.js";
import { TransportError } from "./protocol.js";

export interface RetryPolicy {
  /** Total attempts including the first (1 = no retry). */
  maxAttempts: number;
  initialBackoffMs: number;
  maxBackoffMs: number;
  multiplier: number;
}

export const DEFAULT_RETRY: RetryPolicy = { maxAttempts: 3, initialBackoffMs: 100, maxBackoffMs: 2000, multiplier: 2 };

export interface Attempted<T> {
  value: T;
  attempts: number;
  elapsedMs: number;
}

export class RetriesExhausted extends Error {
  constructor(readonly last: unknown, readonly attempts: number, readonly elapsedMs: number) {
    super("retries exhausted");
  }
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(t);
      reject(signal!.reason);
    };
    const t = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    if (signal) listenAbort(signal, onAbort);
  });

/**
 * Runs `call` until it succeeds or fails with something other than UNAVAILABLE, at most
 * `policy.maxAttempts` times, sleeping an exponential backoff (jittered between half and all of it) in between. Only
 * UNAVAILABLE is retried: it is the status a protocol gives when the request did not reach a server (or the
 * connection broke), while every other status is the server's answer and would come again.
 * Callers pass `safe = false` for calls that must not run twice (stateful sequences, loads).
 */
export async function withRetry<T>(call: () => Promise<T>, policy: RetryPolicy, safe: boolean, signal?: AbortSignal): Promise<Attempted<T>> {
  const start = performance.now();
  const max = safe ? Math.max(1, policy.maxAttempts) : 1;
  let backoff = policy.initialBackoffMs;
  for (let attempt = 1; ; attempt++) {
    try {
      return { value: await call(), attempts: attempt, elapsedMs: performance.now() - start };
    } catch (e) {
      const retriable = e instanceof TransportError && e.code === "UNAVAILABLE";
      if (!retriable || attempt >= max || signal?.aborted) throw new RetriesExhausted(e, attempt, performance.now() - start);
      await sleep(backoff * (0.5 + Math.random() / 2), signal);
      backoff = Math.min(policy.maxBackoffMs, backoff * policy.multiplier);
    }
  }
}
