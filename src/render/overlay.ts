import { execFile, spawn, type ChildProcessByStdio } from "node:child_process";
import { randomBytes } from "node:crypto";
import { rename, rm } from "node:fs/promises";
import type { Readable, Writable } from "node:stream";
import { promisify } from "node:util";
import { VideoAnalysisError } from "../errors.js";
import type { VideoColor } from "../video/color.js";
import { ErrorTail, ffmpegFileUrl, ffmpegPath, ffprobePath, parseLogLine } from "../video/ffmpeg-tools.js";
import { frameByteSize, planFrames, SHOWINFO_DECODED, SHOWINFO_PICKED } from "../video/frame-plan.js";
import type { VideoMetadata } from "../video/metadata.js";
import { isMp4Container, mp4FrameTimes } from "../video/mp4-index.js";

/** The x264 arguments shared by the renderer and the bench's ffmpeg-alone baseline (CRF 20: annotations stay crisp). */
export function x264Args(o: { crf?: number; preset?: string }): string[] {
  return ["-c:v", "libx264", "-preset", o.preset ?? "veryfast", "-crf", String(o.crf ?? 20), "-pix_fmt", "yuv420p", "-movflags", "+faststart"];
}

export interface OverlayOptions {
  /** Output frames per second: the analysis rate (frames selected as the run selected them) or the source's. */
  fps: number;
  /** The analysis rate's select (the run's `analysis.fps`); absent: every frame of the source. */
  selectFps?: number;
  /** Frames to write. */
  frames: number;
  /** The output frame where each layer starts (ascending, the first 0); a layer lasts until the next. */
  layerStarts: readonly number[];
  crf?: number;
  preset?: string;
  color?: VideoColor["tags"];
  /** What ffmpeg reads (default the video file): a sparse decode's input (sparse.ts) at the analysis rate. */
  input?: string;
}

/**
 * How many straight runs (layers starting a fixed number of frames apart) ffmpeg is told about. Analysed
 * frames at a whole fraction of the source's rate make one run; beyond this many, each layer is sent once
 * per frame it covers instead.
 */
const MAX_RUNS = 64;

/**
 * The layers' starts as an ffmpeg expression of the layer's number N giving its first output frame
 * (straight runs of equal steps, nested ifs), or undefined when that takes more than MAX_RUNS runs.
 */
export function layerStartExpr(starts: readonly number[]): string | undefined {
  const runs: Array<{ n: number; frame: number; step: number }> = [];
  for (let n = 0; n < starts.length; n++) {
    const step = (starts[n + 1] ?? starts[n]! + 1) - starts[n]!;
    const run = runs[runs.length - 1];
    if (run && starts[n]! === run.frame + (n - run.n) * run.step) continue;
    runs.push({ n, frame: starts[n]!, step });
  }
  if (runs.length > MAX_RUNS) return undefined;
  return runs.reduceRight<string>(
    (rest, r, i) => {
      const here = `${r.frame}+${r.step}*(N-${r.n})`;
      return i === runs.length - 1 ? here : `if(lt(N,${runs[i + 1]!.n}),${here},${rest})`;
    },
    "",
  );
}

const PICKED_TAG = `[showinfo@${SHOWINFO_PICKED} @`;
const DECODED_TAG = `[showinfo@${SHOWINFO_DECODED} @`;
const SHOWINFO_FRAME = /\bn:\s*(\d+)\s+pts:\s*(-?\d+)\s+pts_time:/;
const SHOWINFO_TB = /config in time_base:\s*(\d+)\/(\d+)/;

/**
 * One ffmpeg that decodes the video, lays the annotation layer over it and encodes H.264 (yuv420p,
 * +faststart): the video's pixels never pass through Node. The layers (yuva420p, the display size) come
 * on stdin with backpressure, each once, timed by `layerStarts` (the main stream is renumbered by frame
 * count over fps, each layer put just before its first frame); only when the starts make too many runs
 * for one expression is a layer sent once per frame it covers (copiesOf). The frames are picked by the frame reader's own filter chain (planFrames: the same
 * select as the run, the display size, limited range), and its "picked" showinfo log gives each frame's
 * real time, so `times` can be checked against what the layers were drawn for. The file appears at
 * `path` only when finish() succeeds; abort() kills ffmpeg and deletes it.
 */
export class OverlayEncoder {
  private readonly child: ChildProcessByStdio<Writable, null, Readable>;
  private readonly temp: string;
  private readonly errors = new ErrorTail(4);
  private readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private failed: Error | undefined;
  private tb: [number, number] | undefined;
  private pending = "";
  readonly layerBytes: number;
  /** Where each layer starts, as ffmpeg's expression (undefined: a layer is sent for every frame). */
  private readonly startExpr: string | undefined;
  /** Seconds of each frame ffmpeg picked, in order (from its log). */
  readonly times: number[] = [];

  constructor(
    readonly path: string,
    readonly meta: VideoMetadata,
    readonly options: OverlayOptions,
  ) {
    const { displayWidth: w, displayHeight: h } = meta;
    const { fps, color } = options;
    this.layerBytes = frameByteSize("yuv420p", w, h) + w * h;
    this.startExpr = layerStartExpr(options.layerStarts);
    this.temp = `${path}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`;
    const plan = planFrames(meta, { ...(options.selectFps !== undefined ? { fps: options.selectFps } : {}), pixelFormat: "yuv420p" });
    const tags = [
      "-color_range", "tv",
      ...(color?.colorSpace ? ["-colorspace", color.colorSpace] : []),
      ...(color?.colorPrimaries ? ["-color_primaries", color.colorPrimaries] : []),
      ...(color?.colorTransfer ? ["-color_trc", color.colorTransfer] : []),
    ];
    const graph =
      // The output frame clock in AV_TIME_BASE: in a coarse source time base (1/25, say) N/(fps*TB) would round
      // frames together and the layers would land on the wrong ones.
      `[0:${meta.streamIndex}]${plan.filter},settb=AVTB,setpts=N/(${fps}*TB)[m];` +
      // Layer n a quarter frame before its first frame: framesync takes equal times main first, which
      // would put the layer before it on that frame. Overlay holds each layer until the next one's time.
      `[1:v]settb=AVTB,setpts='(${this.startExpr ?? "N"}-0.25)/(${fps}*TB)'[l];` +
      // yuv420p needs even sizes: an odd edge gets one padded row or column.
      `[m][l]overlay=eof_action=repeat:format=yuv420,pad=ceil(iw/2)*2:ceil(ih/2)*2[o]`;
    const args = [
      "-hide_banner", "-nostdin", "-nostats", "-loglevel", "level+info",
      "-copyts", "-noautorotate", "-i", options.input ?? ffmpegFileUrl(meta.path),
      "-f", "rawvideo", "-pix_fmt", "yuva420p", "-s", `${w}x${h}`, "-framerate", String(fps), "-i", "pipe:0",
      // One filter thread: the overlay's slices are too small to pay for waking a second thread beside
      // x264's (measured on the bench's 60 s render: the same file, 2% less CPU, 8% less wall time).
      "-filter_complex_threads", "1", "-filter_complex", graph, "-map", "[o]", "-an", "-sn", "-dn",
      "-frames:v", String(options.frames), "-r", String(fps),
      ...tags, ...x264Args(options),
      "-f", "mp4", "-y", ffmpegFileUrl(this.temp),
    ];
    this.child = spawn(ffmpegPath(), args, { stdio: ["pipe", "ignore", "pipe"] });
    this.child.stderr.setEncoding("utf8");
    this.child.stderr.on("data", (s: string) => this.log(s));
    this.child.stdin.on("error", (e) => {
      // ffmpeg stops reading once it has its frames (-frames:v): a closed pipe then is no failure.
      if ((e as NodeJS.ErrnoException).code !== "EPIPE") this.failed ??= e;
    });
    this.exited = new Promise((resolve) => {
      this.child.on("error", (e) => {
        this.failed ??= e;
        resolve({ code: null, signal: null });
      });
      this.child.on("close", (code, signal) => resolve({ code, signal }));
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  private log(s: string): void {
    const lines = (this.pending + s).split("\n");
    this.pending = lines.pop() ?? "";
    for (const line of lines) {
      // The reader's per-frame line for every decoded frame: render only needs the picked ones.
      if (line.startsWith(DECODED_TAG)) continue;
      if (line.startsWith(PICKED_TAG)) {
        const f = SHOWINFO_FRAME.exec(line);
        if (f && this.tb) this.times.push((Number(f[2]) * this.tb[0]) / this.tb[1] - this.meta.containerStartTime);
        else if (!this.tb) {
          const tb = SHOWINFO_TB.exec(line);
          if (tb) this.tb = [Number(tb[1]), Number(tb[2])];
        }
        continue;
      }
      const l = parseLogLine(line);
      if (l.level === "error" || l.level === "fatal" || l.level === "panic") this.errors.add(l.text);
    }
  }

  /** How many times layer `i` is to be written: once, or once per frame it covers (see MAX_RUNS). */
  copiesOf(i: number): number {
    const starts = this.options.layerStarts;
    return this.startExpr !== undefined ? 1 : (starts[i + 1] ?? this.options.frames) - starts[i]!;
  }

  /** Sends the next layer (layerBytes); resolves when the pipe has room again. `done`: the pipe no longer needs the bytes. */
  async write(layer: Uint8Array, done?: () => void): Promise<void> {
    if (layer.byteLength !== this.layerBytes) throw new RangeError(`OverlayEncoder.write: a layer is ${this.layerBytes} bytes, got ${layer.byteLength}`);
    this.check();
    const ok = this.child.stdin.write(layer, () => done?.());
    if (!ok) {
      // Room again, or ffmpeg gone (its exit is a promise, not an event: it may already have happened).
      await new Promise<void>((resolve) => {
        const go = () => {
          this.child.stdin.off("drain", go);
          resolve();
        };
        this.child.stdin.on("drain", go);
        void this.exited.then(go);
      });
      this.check();
    }
  }

  /** Closes the layer stream, waits for ffmpeg, and moves the file into place (after `accept` has checked the frames' times). */
  async finish(accept: (times: readonly number[]) => void): Promise<void> {
    this.check();
    this.child.stdin.end();
    const { code, signal } = await this.exited;
    if (code !== 0) {
      await rm(this.temp, { force: true });
      throw this.error(code, signal);
    }
    try {
      accept(this.times);
    } catch (e) {
      await rm(this.temp, { force: true });
      throw e;
    }
    await rename(this.temp, this.path);
  }

  async abort(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill("SIGKILL");
    this.child.stdin.destroy();
    await this.exited;
    await rm(this.temp, { force: true });
  }

  private check(): void {
    // Killed (abort(), or from outside): signalCode is set and exitCode stays null.
    const gone = this.child.exitCode !== null || this.child.signalCode !== null || this.child.stdin.destroyed;
    if (this.failed || gone) throw this.error(this.child.exitCode, this.child.signalCode);
  }

  private error(code: number | null, signal: NodeJS.Signals | null): VideoAnalysisError {
    const how = this.failed ? this.failed.message : signal ? `killed by ${signal}` : `exit status ${code}`;
    const hint = (this.failed as NodeJS.ErrnoException | undefined)?.code === "ENOENT" ? "; install ffmpeg or set FFMPEG_PATH" : "";
    return new VideoAnalysisError("IO_ERROR", `ffmpeg could not render ${this.path} (${how}): ${this.errors.summary()}${hint}`, { details: { file: this.path } });
  }
}

/**
 * The time of every frame ffmpeg outputs for the video's stream, in presentation order, on the frame
 * reader's timeline (pts x time base - the container's start time), without decoding: from an MP4's index
 * (mp4FrameTimes), else from ffprobe's packets (sorted pts; those outside the edit list left out).
 */
export async function frameTimes(path: string, streamIndex: number, containerStartTime: number, container: string, signal?: AbortSignal): Promise<number[]> {
  // An MP4's index says it in milliseconds; ffprobe reads every packet of the file (seconds for hours of video).
  const indexed = isMp4Container(container) ? await mp4FrameTimes(path, streamIndex) : undefined;
  if (indexed) return Array.from(indexed, (t) => t - containerStartTime);
  const { stdout } = await promisify(execFile)(
    ffprobePath(),
    ["-v", "error", "-select_streams", String(streamIndex), "-show_entries", "stream=time_base:packet=pts,flags", "-of", "compact=p=0:nk=1", ffmpegFileUrl(path)],
    { maxBuffer: 1 << 28, ...(signal ? { signal } : {}) },
  );
  const lines = stdout.split("\n").filter((l) => l !== "");
  const tbLine = lines.find((l) => l.includes("/"));
  if (!tbLine) throw new VideoAnalysisError("VIDEO_INVALID", `ffprobe gave no time base for ${path}`, { details: { file: path } });
  const [num, den] = tbLine.split("/").map(Number) as [number, number];
  // "pts|flags": a packet flagged D (outside an edit, kept only to decode others) is no output frame.
  const pts = lines
    .map((l) => /^(-?\d+)\|([A-Z_]*)$/.exec(l))
    .filter((m) => m !== null && !m[2]!.includes("D"))
    .map((m) => Number(m![1]))
    .sort((a, b) => a - b);
  return pts.map((p) => (p * num) / den - containerStartTime);
}
