import { setMaxListeners } from "node:events";
import { abortError, raceAbort, VideoAnalysisError } from "../errors.js";
import type { Analyzer, FrameContext } from "./component.js";
import { checkFrame, FittedFrame, PixelPool, type Fitter, type RgbFrame } from "./frame.js";
import type { StageClock } from "./stats.js";

/**
 * The built-in components' results, by their keys (depth, flow, clip, scene, detections): each family's
 * folder declares its own entry here (declaration merging), so `r.detections` is typed.
 */
export interface ComponentResults {}

/**
 * Everything the enabled components say about one frame: each component's result under its key
 * (Component.key; a profile's own component under its name), absent when it has none for the frame.
 */
export interface FrameResult extends ComponentResults {
  index: number;
  /** Seconds. */
  timestamp: number;
  /** The frame's number in the video (RgbFrame.sourceIndex, else `index`). */
  sourceIndex: number;
  width: number;
  height: number;
  [key: string]: unknown;
}

/** The components a pipeline runs, in the order their results are listed. */
export type PipelineComponents = readonly Analyzer[];

export interface PipelineOptions {
  signal?: AbortSignal;
  /** Frames analysed at once (decoded, being preprocessed or waiting for inference). */
  window: number;
  clock: StageClock;
  /** Timestamps of frames that carry none: index / fps. */
  fps: number;
  /** The size detection boxes are reported in, per frame (default: the frame's own size). */
  outputSize?: { width: number; height: number };
  /** Called with each frame once nothing reads it any more, for a source that reuses its buffers (FrameReader.recycle). */
  recycle?: (frame: RgbFrame) => void;
  /** Fits frames in shared memory on other threads (FitPool); others are fitted on this thread. */
  fitter?: Fitter;
  /** The depth and flow maps are written to artifacts as they are (FrameContext.checksums). */
  checksums?: boolean;
  /**
   * The first `prime` frames only give the flow component its previous frame and yield nothing: a resumed
   * run feeds the frame before its first new one, so RAFT pairs it exactly as an uninterrupted run did.
   */
  prime?: number;
}

/**
 * The scheduler. Frames are pulled from `frames` while fewer than `window` are being analysed; for each
 * frame every component starts at once (its preprocessing starts right away, in frame order, here or on a
 * fitting worker; its inference waits for a slot of its model's in-flight limit), so decoding (ffmpeg),
 * preprocessing of the next frames, the inference calls of several models (onnxruntime's threads or the
 * server) and postprocessing overlap. Results come out in frame order; tracking runs there, since it must
 * see the frames in order. Pulling stops while the window is full, which pauses the source (ffmpeg)
 * through its backpressure: memory is bounded by the window, not by the video's length.
 *
 * The fitted images of frame t live in pooled buffers until frame t+1's results are out (RAFT pairs t
 * with t+1); then they go back to the pool and frame t to `recycle`.
 *
 * A failure of any call, or `signal`, stops the pipeline: no further frame is pulled, the source is
 * closed (ffmpeg killed), calls in flight are cancelled and awaited, and the first error is thrown.
 */
export async function* analyzeFrames(frames: AsyncIterable<RgbFrame>, c: PipelineComponents, options: PipelineOptions): AsyncGenerator<FrameResult> {
  const { clock, fps } = options;
  const window = Math.max(1, options.window);
  const controller = new AbortController();
  const inner = controller.signal;
  // Every call in flight (and every wait for a model's slot) listens to it: many at once is normal here.
  setMaxListeners(0, inner);
  const onOuterAbort = () => controller.abort(options.signal!.reason);
  if (options.signal?.aborted) controller.abort(options.signal.reason);
  options.signal?.addEventListener("abort", onOuterAbort, { once: true });

  const tasks = new Set<Promise<unknown>>();
  const track = <T>(p: Promise<T>): Promise<T> => {
    tasks.add(p);
    p.then(
      () => tasks.delete(p),
      (e: unknown) => {
        tasks.delete(p);
        if (!inner.aborted) controller.abort(e);
      },
    );
    return p;
  };

  const pool = new PixelPool();
  interface Started {
    raw: RgbFrame;
    fitted: FittedFrame;
    result: Promise<FrameResult>;
    primeOnly: boolean;
  }
  const start = (raw: RgbFrame, position: number): Started => {
    const image = checkFrame(raw, `frame ${position}`);
    const index = raw.index ?? position;
    const timestamp = raw.timestamp ?? index / fps;
    const sourceIndex = raw.sourceIndex ?? index;
    const fitted = new FittedFrame(image, pool, options.fitter);
    const ctx: FrameContext = {
      index,
      timestamp,
      sourceIndex,
      ...(raw.afterBreak ? { afterBreak: true } : {}),
      fitted,
      clock,
      outputSize: options.outputSize ?? { width: image.width, height: image.height },
      ...(options.checksums ? { checksums: true } : {}),
    };
    if (position < (options.prime ?? 0)) {
      const primed = Promise.all(c.filter((x) => x.pairs).map((x) => track(x.analyze(ctx, inner))));
      const result = primed.then((): FrameResult => ({ index, timestamp, sourceIndex, width: image.width, height: image.height }));
      return { raw, fitted, result, primeOnly: true };
    }
    // Called in frame order: each analyze() runs synchronously up to its first await (the flow component
    // relies on it to pair frame t with t+1).
    const started = c.map((x) => track(x.analyze(ctx, inner)));
    const result = track(
      (async (): Promise<FrameResult> => {
        const r: FrameResult = { index, timestamp, sourceIndex, width: image.width, height: image.height };
        for (const [i, x] of c.entries()) {
          const v = await started[i];
          if (v !== undefined) r[x.key] = v;
        }
        return r;
      })(),
    );
    return { raw, fitted, result, primeOnly: false };
  };

  const it = frames[Symbol.asyncIterator]();
  const pending: Started[] = [];
  let previous: Started | undefined;
  let position = 0;
  let exhausted = false;
  let finished = false;
  try {
    for (;;) {
      while (!exhausted && pending.length < window) {
        const t = performance.now();
        const next = await raceAbort(it.next(), inner);
        clock.add("decode", performance.now() - t);
        if (next.done) {
          exhausted = true;
          break;
        }
        pending.push(start(next.value, position++));
      }
      const head = pending.shift();
      if (!head) break;
      const result = await raceAbort(head.result, inner);
      // Frame t-1 is done with: its calls and the flow pair (t-1, t) have answered.
      if (previous) {
        previous.fitted.release();
        options.recycle?.(previous.raw);
      }
      previous = head;
      if (head.primeOnly) continue;
      for (const x of c) {
        const v = result[x.key];
        if (!x.inOrder || v === undefined) continue;
        const size = options.outputSize ?? { width: result.width, height: result.height };
        result[x.key] = clock.time("postprocess", () => x.inOrder!(v, size));
      }
      yield result;
      if (inner.aborted) throw abortError(inner);
    }
    finished = true;
  } catch (e) {
    if (!inner.aborted) controller.abort(e);
    throw inner.aborted ? abortError(inner) : e;
  } finally {
    options.signal?.removeEventListener("abort", onOuterAbort);
    if (!finished && !inner.aborted) controller.abort(new VideoAnalysisError("CANCELLED", "the consumer stopped reading results"));
    if (!exhausted) await it.return?.().catch(() => undefined);
    await Promise.allSettled([...tasks]);
  }
}
