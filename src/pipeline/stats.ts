/**
 * Latency figures of one model: every call's duration is kept in a Float64Array that grows by doubling
 * (8 bytes a call: 3,000 calls of a 10-minute video at 5 fps hold 24 KB), so percentiles are exact.
 */
export class LatencyRecorder {
  private samples = new Float64Array(64);
  private n = 0;
  private sum = 0;

  add(ms: number): void {
    if (this.n === this.samples.length) {
      const grown = new Float64Array(this.samples.length * 2);
      grown.set(this.samples);
      this.samples = grown;
    }
    this.samples[this.n++] = ms;
    this.sum += ms;
  }

  get count(): number {
    return this.n;
  }

  /** Total of all calls, ms. */
  get total(): number {
    return this.sum;
  }

  /** p50, p95 and mean in ms (rounded to 0.01), null when there were no calls. */
  summary(): { p50: number; p95: number; mean: number } | null {
    if (this.n === 0) return null;
    const s = this.samples.slice(0, this.n).sort();
    return { p50: round2(percentile(s, 50)), p95: round2(percentile(s, 95)), mean: round2(this.sum / this.n) };
  }
}

/** The p-th percentile (0-100) of sorted samples, linear between closest ranks. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return NaN;
  const x = ((sorted.length - 1) * p) / 100;
  const lo = Math.floor(x);
  const hi = Math.ceil(x);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (x - lo);
}

export function round2(v: number): number {
  return Math.round(v * 100) / 100;
}

/** The stages of a run whose time is reported. */
export const STAGES = ["decode", "preprocess", "inference", "postprocess", "write", "commit"] as const;
export type Stage = (typeof STAGES)[number];

/**
 * Busy time per stage, in ms. Stages overlap (inference calls of several models run at once, decoding
 * runs in ffmpeg while frames are analysed), so the stages add up to more than the wall time:
 * - decode: time the pipeline waited for the next frame from ffmpeg (decoding that was not hidden);
 * - preprocess: resizing, cropping, letterboxing and tokenising on the JavaScript thread;
 * - inference: the sum of the durations of every model call (client-side normalisation of the embedded
 *   backend and transfers included);
 * - postprocess: decoding outputs (NMS, top-k, similarities) and tracking;
 * - write: streaming results into the .npz files and writing the manifest;
 * - commit: making the run durable as it goes (journal.ts), behind the analysis like the writes.
 *
 * @example
 * const clock = new StageClock();
 * const image = await clock.timeAsync("preprocess", () => readImageRgb("bus.jpg"));
 * clock.time("postprocess", () => image.data.reduce((a, b) => a + b, 0));
 * clock.add("inference", 12.5);
 * console.log(clock.rounded()); // { decode: 0, preprocess: ..., inference: 12.5, postprocess: ..., write: 0, commit: 0 }
 */
export class StageClock {
  readonly ms: Record<Stage, number> = { decode: 0, preprocess: 0, inference: 0, postprocess: 0, write: 0, commit: 0 };

  add(stage: Stage, ms: number): void {
    this.ms[stage] += ms;
  }

  /** Runs a synchronous `f` and charges its time to `stage`. */
  time<T>(stage: Stage, f: () => T): T {
    const t = performance.now();
    try {
      return f();
    } finally {
      this.ms[stage] += performance.now() - t;
    }
  }

  /** Runs an async `f` and charges its wall time to `stage`. */
  async timeAsync<T>(stage: Stage, f: () => Promise<T>): Promise<T> {
    const t = performance.now();
    try {
      return await f();
    } finally {
      this.ms[stage] += performance.now() - t;
    }
  }

  rounded(): Record<Stage, number> {
    const out = {} as Record<Stage, number>;
    for (const s of STAGES) out[s] = round2(this.ms[s]);
    return out;
  }
}
