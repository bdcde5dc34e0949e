import { constants, existsSync } from "node:fs";
import { access, stat } from "node:fs/promises";
import { resolve } from "node:path";
import { videoOfRecord, type VideoRecord } from "../artifacts/manifest.js";
import { VideoAnalysisError } from "../errors.js";
import type { VideoColor } from "../video/color.js";
import type { VideoMetadata } from "../video/metadata.js";
import { planSparseInput, type SparseInput } from "../video/sparse.js";
import { ALL_LAYERS, Annotator, type Layers } from "./annotate.js";
import { AnnotationLayer } from "./layer.js";
import { frameTimes, OverlayEncoder } from "./overlay.js";
import { loadRun, rowAtOrBefore, type RunData } from "./run-data.js";

export interface RenderOptions {
  /** The MP4 to write (replaced atomically when it exists). */
  out: string;
  /** Layers to draw (default: all); a layer whose artifact the run lacks is left out. */
  layers?: Partial<Layers>;
  /**
   * "analysis" (default): the analysed frames only, at the analysis rate. "source": every frame of the
   * video, each showing the latest analysed frame's results (boxes held between analysed frames).
   */
  rate?: "analysis" | "source";
  /** The video, when it is no longer where the manifest says it was. */
  video?: string;
  crf?: number;
  preset?: string;
  /**
   * At the analysis rate, let ffmpeg decode only the frames the rendered ones need, as `main` does
   * (`analysis.sparse_decode`; the same pixels). Default true; the result's `decode` says what was done.
   */
  sparse?: boolean;
  signal?: AbortSignal;
  /** Called after every frame written. */
  onProgress?: (p: { frames: number; total: number }) => void;
}

export interface RenderResult {
  out: string;
  frames: number;
  fps: number;
  width: number;
  height: number;
  /** frames / fps */
  duration: number;
  /** Layers drawn (asked for and present in the run). */
  layers: Array<keyof Layers>;
  /** "sparse": ffmpeg decoded only what the rendered frames need (see `sparse`); "full": every frame up to the last. */
  decode: "sparse" | "full";
  /**
   * Where the video's facts (size, rate, stream, colour) came from: "manifest", the run's record of them
   * (the file still the one the run read: its size, readable, not modified since the run began; runs
   * written since the colour is recorded), else "ffprobe".
   */
  facts: "manifest" | "ffprobe";
  wall_ms: number;
}

/** The layers that will be drawn: asked for and backed by an artifact of the run. */
export function layersFor(run: RunData, asked: Partial<Layers> = {}): Layers {
  const on = { ...ALL_LAYERS, ...asked };
  return {
    boxes: on.boxes && !!run.detections,
    trails: on.trails && !!run.detections,
    depth: on.depth && !!run.depth,
    flow: on.flow && !!run.flow,
    caption: on.caption,
  };
}

/** The video a run analysed: `given`, or the manifest's path; NOT_FOUND saying what to pass when it is gone. */
export function runVideo(run: RunData, given?: string): string {
  const path = given ?? run.manifest.video.path;
  if (!existsSync(path))
    throw new VideoAnalysisError("NOT_FOUND", `the video of run ${run.dir} is not at ${path}; pass its current path (--video)`, { details: { file: path } });
  return path;
}

/**
 * Renders a run folder as an annotated H.264 MP4. One ffmpeg decodes the run's video (the frames the
 * run analysed, or every frame), lays the annotations over it and encodes it; Node draws only the
 * annotation layer (AnnotationLayer: yuva420p, the results drawn by the same code as before, once per
 * analysed frame) and sends it through a pipe with backpressure, a layer per output frame. The frames'
 * times are known in advance (the run's, or the packets'), and ffmpeg's log of the frames it picked must
 * agree with them or no file is written (VIDEO_INVALID). Memory stays flat (two layers, the depth/flow
 * maps read a row at a time, the next one ahead); `signal` kills ffmpeg and leaves no file (CANCELLED).
 *
 * @example
 * await renderRun("runs/people", { out: "people.mp4", layers: { flow: false } });
 */
export async function renderRun(runDir: string, options: RenderOptions): Promise<RenderResult> {
  try {
    return await renderOnce(runDir, options);
  } catch (e) {
    // A sparse decode that picked other frames than it promised: rendered again from a full decode, as
    // the frame reader does (no file was written; progress starts again).
    if (!(e instanceof SparseMismatch)) throw e;
    return await renderOnce(runDir, { ...options, sparse: false });
  }
}

/**
 * The video's facts as the run recorded them (the manifest's `video`), when the record has the colour (runs
 * written since it is recorded) and the file is still the one it was as far as a stat can tell: the
 * recorded size, readable, not modified since the run began. Then no ffprobe, which costs ~0.1 CPU s with
 * its modules and holds ffmpeg's start back by as much. Else undefined, and the video is probed. Either
 * way, the frames ffmpeg picks are checked against the times the layers were drawn for.
 */
async function recordedVideo(rec: VideoRecord, path: string, runStarted: string): Promise<{ meta: VideoMetadata; color: VideoColor } | undefined> {
  if (!MATRICES.has(rec.color_matrix as string) || !(rec.display_width > 0 && rec.display_height > 0 && rec.frame_rate > 0)) return undefined;
  const st = await stat(path).catch(() => undefined);
  if (!st || st.size !== rec.size_bytes || !(st.mtimeMs <= Date.parse(runStarted))) return undefined;
  if (!(await access(path, constants.R_OK).then(() => true, () => false))) return undefined;
  const meta = { ...videoOfRecord(rec), path: resolve(path) };
  const tags: VideoColor["tags"] = {};
  for (const k of ["colorSpace", "colorPrimaries", "colorTransfer", "colorRange"] as const) if (typeof meta[k] === "string") tags[k] = meta[k];
  return { meta, color: { matrix: meta.colorMatrix!, tags } };
}

const MATRICES = new Set(["bt601", "bt709", "bt2020"]);

/** ffprobe's facts (loaded only when needed: fluent-ffmpeg's modules cost every render ~15 ms otherwise). */
async function probe(path: string): Promise<{ meta: VideoMetadata; color: VideoColor }> {
  const { probeVideoColor } = await import("../video/metadata.js");
  return probeVideoColor(path, { checkEnd: false });
}

/** A sparse decode's frames were not the planned ones (renderRun then decodes in full). */
class SparseMismatch extends Error {}

/** How render plans a sparse input: planSparseInput (a test may hand in a plan whose promises are wrong). @internal */
export const renderSparse = { plan: planSparseInput };

async function renderOnce(runDir: string, options: RenderOptions): Promise<RenderResult> {
  const t0 = performance.now();
  const { signal } = options;
  signal?.throwIfAborted();
  const run = await loadRun(runDir);
  let encoder: OverlayEncoder | undefined;
  let sparse: SparseInput | undefined;
  // Stops a frame-times ffprobe started before the probe, when its answer is not used.
  const stopEarly = new AbortController();
  // Its failures (the temporary file's removal) surface through the write or finish it interrupts.
  const killOnAbort = () => void encoder?.abort().catch(() => undefined);
  try {
    const video = runVideo(run, options.video);
    const m = run.manifest;
    const rate = options.rate ?? "analysis";
    if (rate !== "analysis" && rate !== "source") throw new VideoAnalysisError("INVALID_ARGUMENT", `rate must be "analysis" or "source", got "${String(rate)}"`);
    const layers = layersFor(run, options.layers);
    // The video's facts (the manifest's, or a probe), the packets' times and the font run together: the
    // times and the annotator from the manifest's record of the video, used when the facts agree with it.
    const rec = m.video;
    const early = {
      times: rate === "source" ? frameTimes(video, rec.stream_index, rec.container_start_time, rec.container, stopEarly.signal) : undefined,
      annotator: rec.display_width > 0 && rec.display_height > 0 ? Annotator.create(run, layers, rec.display_width, rec.display_height) : undefined,
    };
    // Awaited below, or dropped when the facts disagree or the probe fails: never an unhandled rejection.
    early.times?.catch(() => undefined);
    early.annotator?.catch(() => undefined);
    // No end-of-file check here (a second ffprobe, ~0.3 s on a busy machine): a truncated video fails in
    // the reader, at its end, and no file is left.
    const recorded = await recordedVideo(rec, video, m.created_at);
    const { meta, color } = recorded ?? (await probe(video));
    const analysisFps = Math.min(m.analysis.fps, meta.frameRate);
    const last = m.analysis.last_timestamp ?? -Infinity;
    // Source rate: every frame up to the end of the last analysed frame's slot.
    const end = m.analysis.max_frames ? last + 1 / analysisFps - 1e-6 : Infinity;
    const fps = rate === "analysis" ? analysisFps : meta.frameRate;
    const analysed = run.detections?.frames.timestamp ?? run.scene?.timestamp ?? run.clip?.timestamp ?? run.depth?.timestamp;
    // Each output frame's time, known before ffmpeg decodes it: the analysed frames' (the run's), or every
    // source frame's up to the end of the last analysed frame's slot (the packets' pts, no decoding).
    let times: number[];
    if (rate === "analysis") times = analysed ? Array.from(analysed).slice(0, m.analysis.frames) : [];
    else {
      const same = meta.streamIndex === rec.stream_index && meta.containerStartTime === rec.container_start_time && meta.container === rec.container;
      if (!same) stopEarly.abort();
      const all = await (same && early.times ? early.times : frameTimes(video, meta.streamIndex, meta.containerStartTime, meta.container, signal));
      times = all.filter((t) => t <= end);
    }
    if (times.length === 0) throw new VideoAnalysisError("VIDEO_INVALID", `no frames of ${video} to render for run ${runDir}`, { details: { file: video } });
    const at = analysed ?? new Float64Array(0);
    // The layers: one per analysed frame shown (frames before the first analysed one get one each), with
    // the output frame where each starts. Each is drawn and sent once; ffmpeg holds it until the next.
    const plan: Array<{ frame: number; t: number }> = [];
    let shown: number | undefined;
    times.forEach((t, frame) => {
      // Results of the latest analysed frame at or before t (a source frame's time, read from its pts
      // in double, may sit a rounding below the same frame's analysed time).
      const row = rowAtOrBefore(at, t + 1e-6);
      const key = row >= 0 ? row : -1 - frame;
      if (key !== shown) plan.push({ frame, t: row >= 0 ? at[row]! : t });
      shown = key;
    });
    if (rate === "analysis" && options.sparse !== false) sparse = await sparseInput(meta, m.analysis.fps, times);
    encoder = new OverlayEncoder(options.out, meta, {
      fps, frames: times.length, color: color.tags, layerStarts: plan.map((p) => p.frame),
      ...(rate === "analysis" ? { selectFps: m.analysis.fps } : {}), ...(sparse ? { input: sparse.url } : {}),
      ...(options.crf !== undefined ? { crf: options.crf } : {}), ...(options.preset ? { preset: options.preset } : {}),
    });
    // Cancelling while the pipe is full or ffmpeg is finishing kills it at once (a pending write or finish then fails).
    signal?.addEventListener("abort", killOnAbort, { once: true });
    const sameSize = meta.displayWidth === rec.display_width && meta.displayHeight === rec.display_height;
    const annotator = await (sameSize && early.annotator ? early.annotator : Annotator.create(run, layers, meta.displayWidth, meta.displayHeight));
    const layer = new AnnotationLayer(meta.displayWidth, meta.displayHeight, color.matrix);
    // Two layer buffers: one is drawn while the pipe may still hold the other.
    const buffers = [layer.data, layer.buffer()];
    const busy: Array<Promise<void>> = [Promise.resolve(), Promise.resolve()];
    for (let i = 0; i < plan.length; i++) {
      signal?.throwIfAborted();
      const current = i & 1;
      await busy[current];
      await layer.draw(annotator, plan[i]!.t, buffers[current]);
      signal?.throwIfAborted();
      let release!: () => void;
      busy[current] = new Promise<void>((r) => (release = r));
      // Sent once for every output frame it covers when ffmpeg cannot be told where it starts.
      for (let k = encoder.copiesOf(i); k > 0; k--) {
        signal?.throwIfAborted();
        await encoder.write(buffers[current]!, k === 1 ? release : undefined);
      }
      // Progress: the frames handed to ffmpeg (it holds at most a pipe's worth of them).
      const frames = plan[i + 1]?.frame ?? times.length;
      options.onProgress?.({ frames, total: times.length });
    }
    signal?.throwIfAborted();
    await encoder.finish((got) => {
      signal?.throwIfAborted();
      // The frames ffmpeg picked are the ones the layers were drawn for, or the video changed since.
      // (ffmpeg may decode and log a frame or two past the last one it writes.)
      const bad = got.length < times.length ? got.length : times.findIndex((t, i) => Math.abs(t - got[i]!) > 1e-3);
      if (bad >= 0 && sparse) throw new SparseMismatch(`frame ${bad}: planned ${times[bad]} s, ffmpeg gave ${got[bad]} s`);
      if (bad >= 0)
        throw new VideoAnalysisError(
          "VIDEO_INVALID",
          `${video} is not the video run ${runDir} analysed: frame ${bad} was planned at ${times[bad] ?? "(none)"} s, ffmpeg gave ${got[bad] ?? "(none)"} s (${got.length} of ${times.length} frames)`,
          { details: { file: video } },
        );
    });
    return {
      out: options.out,
      frames: times.length,
      fps,
      width: meta.displayWidth,
      height: meta.displayHeight,
      duration: times.length / fps,
      layers: (Object.keys(layers) as Array<keyof Layers>).filter((k) => layers[k]),
      decode: sparse ? "sparse" : "full",
      facts: recorded ? "manifest" : "ffprobe",
      wall_ms: Math.round(performance.now() - t0),
    };
  } catch (e) {
    await encoder?.abort();
    if (signal?.aborted) throw new VideoAnalysisError("CANCELLED", `rendering ${runDir} was cancelled; ${options.out} was not written`, { cause: e });
    throw e;
  } finally {
    stopEarly.abort();
    signal?.removeEventListener("abort", killOnAbort);
    // After ffmpeg has exited (finish or abort): it reads the sparse input's index files until then. A
    // folder left behind is swept by a later process (sparse.ts): its removal failing changes nothing here.
    await sparse?.dispose().catch(() => undefined);
    await run.close();
  }
}

/**
 * At the analysis rate, the sparse decode main uses (sparse.ts: ffmpeg decodes only the frames the picked
 * ones need, the same pixels), when the frames it promises to pick are the run's analysed frames; else
 * undefined and the whole file is decoded. ffmpeg's log is checked against the run's times either way.
 */
async function sparseInput(meta: VideoMetadata, fps: number, times: readonly number[]): Promise<SparseInput | undefined> {
  const p = await renderSparse.plan(meta, fps);
  if (!p.input) return undefined;
  const { selectedPts: pts, timescale } = p.input;
  if (pts.length >= times.length && times.every((t, i) => Math.abs(pts[i]! / timescale - meta.containerStartTime - t) <= 1e-3)) return p.input;
  await p.input.dispose();
  return undefined;
}
