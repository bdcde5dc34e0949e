import { existsSync } from "node:fs";
import { VideoAnalysisError } from "../errors.js";
import { probeColors } from "../video/color.js";
import { readFrames } from "../video/frame-reader.js";
import { planFrames } from "../video/frame-plan.js";
import { probeVideo } from "../video/metadata.js";
import { ALL_LAYERS, Annotator, type Layers } from "./annotate.js";
import { Mp4Encoder } from "./encoder.js";
import { loadRun, type RunData } from "./run-data.js";

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
 * Renders a run folder as an annotated H.264 MP4: the run's video decoded again by the SDK's frame
 * reader, the results drawn in its own pixels, encoded by ffmpeg through a pipe with backpressure.
 * The frames stay yuv420p from decoder to encoder (drawn in the Y, U and V planes, each colour
 * converted once in the source's colour matrix), so no pixel is converted to RGB and back.
 * Memory stays flat (a few frames in flight, the depth/flow maps read a row at a time); `signal` kills
 * both ffmpegs and leaves no file (CANCELLED).
 *
 * @example
 * await renderRun("runs/people", { out: "people.mp4", layers: { flow: false } });
 */
export async function renderRun(runDir: string, options: RenderOptions): Promise<RenderResult> {
  const t0 = performance.now();
  const { signal } = options;
  signal?.throwIfAborted();
  const run = await loadRun(runDir);
  let encoder: Mp4Encoder | undefined;
  try {
    const video = runVideo(run, options.video);
    // No end-of-file check here (a second ffprobe, ~0.3 s on a busy machine): a truncated video fails in
    // the reader, at its end, and no file is left.
    const [meta, colors] = await Promise.all([probeVideo(video, { checkEnd: false }), probeColors(video)]);
    const m = run.manifest;
    const rate = options.rate ?? "analysis";
    if (rate !== "analysis" && rate !== "source") throw new VideoAnalysisError("INVALID_ARGUMENT", `rate must be "analysis" or "source", got "${String(rate)}"`);
    const analysisFps = Math.min(m.analysis.fps, meta.frameRate);
    const last = m.analysis.last_timestamp ?? -Infinity;
    // Source rate: every frame up to the end of the last analysed frame's slot.
    const end = m.analysis.max_frames ? last + 1 / analysisFps - 1e-6 : Infinity;
    const fps = rate === "analysis" ? analysisFps : meta.frameRate;
    const total =
      rate === "analysis"
        ? m.analysis.frames
        : Math.min(planFrames(meta, {}).estimatedFrames, Number.isFinite(end) ? Math.ceil((end - meta.startTime) * meta.frameRate) + 1 : Infinity);
    const layers = layersFor(run, options.layers);
    const color = colors.get(meta.streamIndex) ?? { matrix: "bt601", tags: {} };
    // Both ffmpegs start before the glyphs are rendered (sharp, ~0.1 s), so their start-up overlaps it.
    const reader = readFrames(video, { ...(rate === "analysis" ? { fps: m.analysis.fps } : {}), pixelFormat: "yuv420p", metadata: meta, ...(signal ? { signal } : {}) });
    reader.on("error", () => {});
    let frames = 0;
    try {
      encoder = new Mp4Encoder(options.out, {
        width: meta.displayWidth, height: meta.displayHeight, fps, color: color.tags,
        ...(options.crf !== undefined ? { crf: options.crf } : {}), ...(options.preset ? { preset: options.preset } : {}),
      });
      const annotator = await Annotator.create(run, layers, meta.displayWidth, meta.displayHeight);
      const expected = run.detections?.frames.timestamp ?? run.scene?.timestamp ?? run.clip?.timestamp ?? run.depth?.timestamp;
      for await (const f of reader) {
        if (rate === "analysis") {
          if (frames >= m.analysis.frames) break;
          // The same frames as the run, or the video changed since: drawing on other frames would be wrong.
          const want = expected?.[frames];
          if (want !== undefined && Math.abs(want - f.timestamp) > 1e-3) {
            throw new VideoAnalysisError(
              "VIDEO_INVALID",
              `${video} is not the video run ${runDir} analysed: analysed frame ${frames} was at ${want} s, the video now gives ${f.timestamp} s`,
              { details: { file: video } },
            );
          }
        } else if (f.timestamp > end) break;
        signal?.throwIfAborted();
        await annotator.draw({ format: "yuv420p", width: f.width, height: f.height, data: f.data, matrix: color.matrix }, f.timestamp);
        await encoder.write(f.data, () => reader.recycle(f.data));
        frames++;
        options.onProgress?.({ frames, total: Math.max(total, frames) });
      }
    } finally {
      reader.destroy();
    }
    signal?.throwIfAborted();
    if (frames === 0) throw new VideoAnalysisError("VIDEO_INVALID", `no frames of ${video} to render for run ${runDir}`, { details: { file: video } });
    await encoder.finish();
    return {
      out: options.out,
      frames,
      fps,
      width: meta.displayWidth,
      height: meta.displayHeight,
      duration: frames / fps,
      layers: (Object.keys(layers) as Array<keyof Layers>).filter((k) => layers[k]),
      wall_ms: Math.round(performance.now() - t0),
    };
  } catch (e) {
    await encoder?.abort();
    if (signal?.aborted) throw new VideoAnalysisError("CANCELLED", `rendering ${runDir} was cancelled; ${options.out} was not written`, { cause: e });
    throw e;
  } finally {
    await run.close();
  }
}
