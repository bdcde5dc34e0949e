import { spawn, type ChildProcessByStdio } from "node:child_process";
import { Readable } from "node:stream";
import { listenAbort, VideoAnalysisError } from "../errors.js";
import { ErrorTail, ffmpegPath, parseLogLine } from "./ffmpeg-tools.js";
import {
  checkFramePlanOptions,
  ffmpegFrameArgs,
  planFrames,
  SHOWINFO_DECODED,
  SHOWINFO_PICKED,
  type FramePlan,
  type FramePlanOptions,
} from "./frame-plan.js";
import { probeVideo, type VideoMetadata } from "./metadata.js";
import { planSparseInput, type SparseInput, type SparsePlan } from "./sparse.js";

/** One analysed frame. */
export interface Frame {
  /** Analysis frame index: 0, 1, 2, ... in the order frames are yielded. */
  index: number;
  /**
   * Seconds: the pts of the source frame that was selected (pts times the stream's time base, exact) minus
   * the container's start time (VideoMetadata.containerStartTime, 0 for most MP4). Same timeline as
   * VideoMetadata.startTime and duration.
   */
  timestamp: number;
  /**
   * The frame's number in the video: 0 for its first frame, in presentation order, counting every frame
   * the decoder gives (not only the analysed ones), so frame `sourceIndex` of any other tool that
   * decodes the whole stream is this picture.
   */
  sourceIndex: number;
  /** True on the first analysed frame after a timestamp break (see FramePlanOptions.timestampBreaks). */
  afterBreak: boolean;
  width: number;
  height: number;
  /** rgb24, row-major HWC: exactly width * height * 3 bytes (or yuv420p planes, see ReadFramesOptions.pixelFormat). The reader reuses it only once it is given back with recycle(). */
  data: Uint8Array;
}

export interface ReadFramesOptions extends FramePlanOptions {
  /** Aborting kills ffmpeg and makes the iteration throw a VideoAnalysisError with code "CANCELLED". */
  signal?: AbortSignal;
  /**
   * How many decoded frames may wait for the consumer before ffmpeg is paused (default 2). Memory held by
   * the reader is about (highWaterMarkFrames + 2) frames plus the 64 KiB pipe, however long the video.
   */
  highWaterMarkFrames?: number;
  /** Metadata from probeVideo, to skip probing again. */
  metadata?: VideoMetadata;
  /** Frames in SharedArrayBuffer memory, for handing to worker threads without a copy (default false). */
  shared?: boolean;
  /**
   * Fail on any error ffmpeg logs, even one it conceals and decodes past (a damaged packet, say).
   * Default false: such errors are tolerated, as players do; truncation and fatal errors always fail.
   */
  strict?: boolean;
  /**
   * Decode only the frames the analysis rate picks and the frames those depend on (default true): an
   * H.264 or HEVC MP4/MOV frame that no other frame references is left out before decoding when the select filter
   * would not pick it (see sparse.ts). The frames and timestamps are exactly those of a full decode; only
   * ffmpeg's work shrinks (by about 30% for libx264's default B-frames at 5 of 30 fps). Other codecs and
   * containers, and `fps` omitted, always decode in full. false: always decode every frame.
   */
  sparse?: boolean;
}

export interface FrameReaderStats {
  /** Frames handed to the consumer (pushed into the stream). */
  frames: number;
  /** Bytes read from ffmpeg's stdout so far. */
  bytesRead: number;
  /** True while ffmpeg's stdout is paused because the consumer is behind. */
  paused: boolean;
  /** ffmpeg's error-level log lines so far. */
  ffmpegErrors: number;
  /** Process id of ffmpeg once it runs. */
  ffmpegPid: number | undefined;
  /** How the video is decoded (once ffmpeg runs). */
  decode: DecodeStats | undefined;
  /** Frames ffmpeg has decoded so far, counted from its log (every decoded frame, analysed or not). */
  decodedFrames: number;
  /** Frames the decoder lost to errors, counted from the time gaps where it reported them. */
  lostFrames: number;
  /** ffmpeg's last error-level log lines (at most 4). */
  ffmpegErrorLines: readonly string[];
  /** The timestamp breaks found so far (rebased ones; with timestampBreaks "error" the first one stops the reader). */
  timestampBreaks: readonly TimestampBreak[];
}

/** Where decoded timestamps stopped increasing, and how the later ones were shifted. */
export interface TimestampBreak {
  /** The video's frame number (Frame.sourceIndex) of the first frame after the break. */
  sourceIndex: number;
  /** Seconds (same timeline as Frame.timestamp, before rebasing): the frame before the break, and this one. */
  previousTime: number;
  time: number;
  /** Seconds added to this frame's and every later frame's timestamp (up to the next break). */
  offset: number;
}

/**
 * "sparse": ffmpeg is to decode `plannedFrames` of the stream's `sourceFrames` (see ReadFramesOptions.sparse; FrameReaderStats.decodedFrames counts what it did).
 * "full": every frame, and why; `fellBack` when a sparse decode was abandoned for a full one.
 */
export type DecodeStats =
  | { mode: "sparse"; sourceFrames: number; plannedFrames: number }
  | { mode: "full"; reason: string; fellBack?: boolean };

type Child = ChildProcessByStdio<null, Readable, Readable>;

const SHOWINFO_FRAME = /\bn:\s*(\d+)\s+pts:\s*(-?\d+)\s+pts_time:/;
const DECODED_TAG = `[showinfo@${SHOWINFO_DECODED} @`;
const PICKED_TAG = `[showinfo@${SHOWINFO_PICKED} @`;

/** A picked frame's facts from ffmpeg's log, waiting for its bytes. */
interface Picked {
  timestamp: number;
  sourceIndex: number;
  afterBreak: boolean;
  /** Frames decoded and lost up to and including it. */
  decoded: number;
  lost: number;
}
const SHOWINFO_TB = /config in time_base:\s*(\d+)\/(\d+)/;

/**
 * Decodes a video to rgb24 frames with ffmpeg, streamed with backpressure. A Node Readable in object mode
 * (so it pipes and async-iterates like any stream); iterate it with `for await`.
 *
 * Backpressure: frames are pushed into this stream; when push() returns false (highWaterMarkFrames are
 * waiting), ffmpeg's stdout is paused. Node then stops reading the pipe, the 64 KiB kernel pipe fills
 * and ffmpeg blocks in write(): decoding stops until the consumer reads again (_read resumes stdout).
 *
 * ffmpeg is spawned directly (node:child_process), not through fluent-ffmpeg: the reader needs the raw
 * stdout stream to pause and resume, stderr line by line for showinfo's timestamps and the error lines,
 * and a kill that is exactly ours on abort; fluent-ffmpeg's output-stream mode hides the first two.
 *
 * Example:
 * ```ts
 * for await (const f of readFrames("people_768x432_10fps.mp4", { fps: 5, width: 384 })) {
 *   // f = { index: 0, timestamp: 0, sourceIndex: 0, afterBreak: false, width: 384, height: 216, data: Uint8Array(248832) },
 *   // then { index: 1, timestamp: 0.2, sourceIndex: 2, ... }
 * }
 * ```
 */
export class FrameReader extends Readable {
  /** Resolves once ffprobe has run and ffmpeg has started; rejects with the same error as the stream. */
  readonly ready: Promise<{ metadata: VideoMetadata; plan: FramePlan }>;

  private readonly path: string;
  private readonly options: ReadFramesOptions;
  private child: Child | undefined;
  private meta: VideoMetadata | undefined;
  private framePlan: FramePlan | undefined;
  private resolveReady!: (v: { metadata: VideoMetadata; plan: FramePlan }) => void;
  private rejectReady!: (e: unknown) => void;

  private current: Buffer | undefined;
  private filled = 0;
  private readonly complete: Buffer[] = [];
  private readonly spare: Buffer[] = [];
  private readonly made = new WeakSet<Uint8Array>();
  private readonly picked: Picked[] = [];
  /** Decoded frames (the "decoded" showinfo's lines), the last one's pts and its offset in seconds. */
  private decoded = 0;
  private lastDecodedPts: number | undefined;
  private lastDecodedTime = 0;
  /** Decoded frames not yet matched to a picked one: their rebased time (s), number and whether a break precedes them. */
  /** Per delivered frame, decodedFrames and lostFrames up to it (pairs): see countsThrough(). */
  private through: number[] = [];
  private readonly recent: Array<{ time: number; sourceIndex: number; afterBreak: boolean; decoded: number; lost: number }> = [];
  /** Frames the decoder lost to errors (see onDecoded). */
  private lost = 0;
  private offset = 0;
  private readonly breaks: TimestampBreak[] = [];
  private timeBase: [number, number] | undefined;
  private stderrRest = "";
  private errors = new ErrorTail(4);
  /** The sparse decode in use (undefined when decoding in full). */
  private sparse: SparseInput | undefined;
  private decodeStats: DecodeStats | undefined;
  /** Frames ffmpeg's select filter has given in the current run, and how many of its first ones were delivered before it began. */
  private selected = 0;
  private redecode = 0;
  /** Bytes of this many frames still to be thrown away (frames delivered before a fallback, decoded again). */
  private discardFrames = 0;
  /** Source pts of delivered frames while a sparse decode runs, to check a fallback decodes the same ones. */
  private readonly deliveredPts: number[] = [];
  private partialFileSeen = false;
  private pushed = 0;
  private bytes = 0;
  private stdoutPaused = false;
  private killedByUs = false;
  private lastTimestamp = Number.NaN;
  private readonly onAbort = () => {
    this.destroy(
      new VideoAnalysisError("CANCELLED", `Reading frames of ${this.meta?.path ?? this.path} was cancelled.`, {
        details: { file: this.meta?.path ?? this.path },
      }),
    );
  };

  constructor(path: string, options: ReadFramesOptions = {}) {
    const hwm = options.highWaterMarkFrames ?? 2;
    if (!Number.isInteger(hwm) || hwm < 1 || hwm > 1024)
      throw new RangeError(`readFrames: highWaterMarkFrames must be an integer between 1 and 1024, got ${String(hwm)}`);
    if (typeof path !== "string" || path === "") throw new TypeError("readFrames: path must be a non-empty string");
    checkFramePlanOptions(options);
    super({ objectMode: true, highWaterMark: hwm });
    this.path = path;
    this.options = options;
    this.ready = new Promise((res, rej) => {
      this.resolveReady = res;
      this.rejectReady = rej;
    });
    // Nobody has to await `ready`; the stream reports the same error.
    this.ready.catch(() => {});
  }

  /** Metadata of the video (after `ready`). */
  get metadata(): VideoMetadata | undefined {
    return this.meta;
  }

  get plan(): FramePlan | undefined {
    return this.framePlan;
  }

  get stats(): FrameReaderStats {
    return {
      frames: this.pushed,
      bytesRead: this.bytes,
      paused: this.stdoutPaused,
      ffmpegErrors: this.errors.count,
      ffmpegPid: this.child?.pid,
      decode: this.decodeStats,
      decodedFrames: this.decoded,
      lostFrames: this.lost,
      ffmpegErrorLines: this.errors.last,
      timestampBreaks: this.breaks,
    };
  }

  override _construct(callback: (error?: Error | null) => void): void {
    this.start().then(
      () => callback(),
      (e: unknown) => {
        this.rejectReady(e);
        callback(e as Error);
      },
    );
  }

  private async start(): Promise<void> {
    const { signal } = this.options;
    const cancelled = () =>
      new VideoAnalysisError("CANCELLED", `Reading frames of ${this.path} was cancelled.`, { details: { file: this.path } });
    if (signal?.aborted) throw cancelled();
    const meta = this.options.metadata ?? (await probeVideo(this.path));
    this.meta = meta;
    const plan = planFrames(meta, this.options);
    this.framePlan = plan;
    if (signal?.aborted) throw cancelled();
    if (this.destroyed) return;

    let input: string | undefined;
    if (plan.fps !== undefined && this.options.sparse !== false) {
      const sparse = await this.planSparse(meta, plan.fps);
      if (sparse.input && (signal?.aborted || this.destroyed)) await sparse.input.dispose();
      if (signal?.aborted) throw cancelled();
      if (this.destroyed) return;
      if (sparse.input) {
        this.sparse = sparse.input;
        input = sparse.input.url;
        this.decodeStats = { mode: "sparse", sourceFrames: sparse.input.frames, plannedFrames: sparse.input.decoded };
      } else this.decodeStats = { mode: "full", reason: sparse.reason };
    } else this.decodeStats = { mode: "full", reason: plan.fps === undefined ? "every frame is analysed" : "sparse: false" };

    await this.launch(ffmpegFrameArgs(meta, plan, "pipe:1", input), this.sparse);
    if (signal) listenAbort(signal, this.onAbort);
    this.resolveReady({ metadata: meta, plan });
  }

  /** Plans the sparse decode; a test seam (a subclass can hand in a plan whose promises are wrong). */
  protected planSparse(meta: VideoMetadata, fps: number): Promise<SparsePlan> {
    return planSparseInput(meta, fps);
  }

  /** Starts ffmpeg; events from a child that is no longer `this.child` (one abandoned in a fallback) are ignored. */
  private async launch(args: string[], sparse: SparseInput | undefined): Promise<void> {
    const meta = this.meta!;
    const child = spawn(ffmpegPath(), args, { stdio: ["ignore", "pipe", "pipe"] });
    this.child = child;
    // The sparse input's index files are needed until ffmpeg exits.
    if (sparse) child.once("close", () => void sparse.dispose());
    await new Promise<void>((res, rej) => {
      child.once("spawn", () => res());
      child.once("error", (e: NodeJS.ErrnoException) =>
        rej(
          e.code === "ENOENT"
            ? new VideoAnalysisError("FAILED_PRECONDITION", `Cannot run ffmpeg to decode ${meta.path}: install ffmpeg or set FFMPEG_PATH.`, {
                details: { file: meta.path },
              })
            : new VideoAnalysisError("IO_ERROR", `Cannot start ffmpeg to decode ${meta.path}: ${e.message}`, { details: { file: meta.path } }),
        ),
      );
    });
    const mine = () => child === this.child;
    child.on("error", (e) => {
      if (mine()) this.destroy(new VideoAnalysisError("IO_ERROR", `ffmpeg failed while decoding ${meta.path}: ${e.message}`));
    });
    child.stdout.on("data", (chunk: Buffer) => {
      if (mine()) this.onData(chunk);
    });
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (s: string) => {
      if (mine()) this.onStderr(s);
    });
    child.on("close", (code, sig) => {
      if (mine()) this.onClose(code, sig);
    });
    if (this.stdoutPaused) child.stdout.pause();
  }

  /**
   * The sparse decode went other than planned (a frame other than the planned one, fewer frames, or
   * ffmpeg failing on the rewritten input, e.g. a build without the concat or subfile protocol): decode
   * the whole file again from the start, throwing away the frames already delivered (their timestamps are
   * checked to be the same), so the result, or the error, is the full decode's.
   */
  private fallBack(what: string): void {
    const old = this.child!;
    const reason = `${what}; decoded in full instead`;
    this.child = undefined;
    old.kill("SIGKILL");
    old.stdout.destroy();
    old.stderr.destroy();
    this.sparse = undefined;
    this.decodeStats = { mode: "full", reason, fellBack: true };
    for (const f of this.complete) this.recycle(f);
    this.complete.length = 0;
    this.current = undefined;
    this.filled = 0;
    this.picked.length = 0;
    this.decoded = 0;
    this.through = [];
    this.lost = 0;
    this.lastDecodedPts = undefined;
    this.offset = 0;
    this.recent.length = 0;
    this.breaks.length = 0;
    this.timeBase = undefined;
    this.stderrRest = "";
    this.errors = new ErrorTail(4);
    this.partialFileSeen = false;
    this.selected = 0;
    this.redecode = this.pushed;
    this.discardFrames = this.pushed;
    this.launch(ffmpegFrameArgs(this.meta!, this.framePlan!), undefined).catch((e: unknown) => this.destroy(e as Error));
  }

  override _read(): void {
    // The consumer wants more: let ffmpeg run again, then hand over what is already here (which may
    // fill the stream and pause it once more).
    if (this.stdoutPaused && this.child && !this.destroyed) {
      this.stdoutPaused = false;
      this.child.stdout.resume();
    }
    this.drain();
  }

  /**
   * Gives a frame's buffer back for a later frame (the same bytes are overwritten): only once nothing
   * reads `data` any more. Buffers the reader did not make are ignored.
   */
  recycle(data: Uint8Array): void {
    if (this.made.has(data) && !this.spare.includes(data as Buffer) && this.spare.length < 64) this.spare.push(data as Buffer);
  }

  private onData(chunk: Buffer): void {
    this.bytes += chunk.length;
    const size = this.framePlan!.frameBytes;
    let off = 0;
    while (off < chunk.length) {
      if (!this.current) {
        // A frame that lies whole in the chunk could be a view of it, but chunks (<= 64 KiB) are smaller
        // than any real frame, so one copy into a frame-sized buffer is the rule.
        this.current = this.spare.pop();
        if (!this.current) this.made.add((this.current = this.options.shared ? Buffer.from(new SharedArrayBuffer(size)) : Buffer.allocUnsafe(size)));
        this.filled = 0;
      }
      const n = Math.min(size - this.filled, chunk.length - off);
      chunk.copy(this.current, this.filled, off, off + n);
      this.filled += n;
      off += n;
      if (this.filled === size) {
        if (this.discardFrames > 0) {
          // Delivered already, before a fallback to a full decode.
          this.discardFrames--;
          this.recycle(this.current);
        } else this.complete.push(this.current);
        this.current = undefined;
        this.filled = 0;
      }
    }
    this.drain();
  }

  private onStderr(s: string): void {
    const text = this.stderrRest + s;
    const lines = text.split(/\r?\n|\r/);
    this.stderrRest = lines.pop() ?? "";
    const child = this.child;
    for (const line of lines) {
      // A fallback replaced ffmpeg: the rest of these lines are the abandoned run's.
      if (this.child !== child) break;
      this.onLogLine(line);
    }
    this.drain();
  }

  private onLogLine(line: string): void {
    if (line.startsWith(DECODED_TAG)) {
      const f = SHOWINFO_FRAME.exec(line);
      if (f) this.onDecoded(Number(f[2]));
      else this.onTimeBase(line);
      return;
    }
    if (line.startsWith(PICKED_TAG)) {
      const f = SHOWINFO_FRAME.exec(line);
      if (f) {
        const [num, den] = this.timeBase ?? [1, 1];
        const pts = Number(f[2]);
        const k = this.selected++;
        if (this.sparse) {
          const want = this.sparse.selectedPts[k];
          if (num !== 1 || den !== this.sparse.timescale || pts !== want) {
            this.fallBack(`a sparse decode picked frame ${k} at pts ${pts} (time base ${num}/${den}) instead of ${want ?? "none"} (1/${this.sparse.timescale})`);
            return;
          }
          this.deliveredPts.push(pts);
        }
        if (k < this.redecode) {
          // A frame delivered before the fallback: the full decode must agree on which one it was.
          if (this.deliveredPts[k] !== undefined && this.deliveredPts[k] !== pts)
            this.destroy(
              new VideoAnalysisError("INTERNAL", `Decoding ${this.meta!.path} in full after a sparse decode gave frame ${k} at pts ${pts}, not ${this.deliveredPts[k]}.`, {
                details: { file: this.meta!.path },
              }),
            );
          return;
        }
        // -copyts: the source pts (rebased after a break). Counted from the container's start, like VideoMetadata.startTime.
        const timestamp = (pts * num) / den - this.meta!.containerStartTime;
        // The decoded frame it is: the one with its (rebased) time, to within the tick setpts truncates to.
        const j = this.recent.findIndex((d) => Math.abs(d.time - timestamp) <= num / den + 1e-6);
        if (j < 0 && !this.sparse) {
          this.destroy(
            new VideoAnalysisError("INTERNAL", `Decoding ${this.meta!.path}: picked frame ${k} at ${timestamp} s matches no decoded frame.`, {
              details: { file: this.meta!.path },
            }),
          );
          return;
        }
        const passed = this.recent.splice(0, j + 1);
        const afterBreak = passed.some((d) => d.afterBreak);
        // A sparse decode leaves frames out: the frame's number comes from the sample table.
        const sourceIndex = this.sparse ? this.sparse.selectedSourceIndex[k]! : passed[j]!.sourceIndex;
        // Decoded counts: the plan's for a sparse decode (its log lines need not match up, and ffmpeg's lead
        // must not leak into what a run stopped early records), else the matched frame's.
        const counts = this.sparse ? { decoded: this.sparse.decodedThrough[k]!, lost: this.lost } : passed[j]!;
        this.picked.push({ timestamp, sourceIndex, afterBreak, decoded: counts.decoded, lost: counts.lost });
        return;
      }
      this.onTimeBase(line);
      return;
    }
    const { level, text } = parseLogLine(line);
    if (level === "error" || level === "fatal" || level === "panic") {
      this.errors.add(text);
      if (/partial file/i.test(text)) this.partialFileSeen = true;
    }
  }

  private onTimeBase(line: string): void {
    const tb = SHOWINFO_TB.exec(line);
    if (tb) this.timeBase = [Number(tb[1]), Number(tb[2])];
  }

  /**
   * A decoded frame (before the select filter): counted, numbered, checked for a timestamp break (a pts
   * not after the previous frame's) and kept in `recent` with its rebased time until a picked frame
   * claims it (or a later one is picked).
   */
  private onDecoded(pts: number): void {
    const prev = this.lastDecodedPts;
    this.lastDecodedPts = pts;
    const meta = this.meta!;
    const [num, den] = this.timeBase ?? [1, 1];
    const seconds = (p: number) => (p * num) / den - meta.containerStartTime;
    const lastTime = this.lastDecodedTime;
    this.lastDecodedTime = seconds(pts);
    // In a file the decoder reported errors in, frames it lost still have their numbers: a gap of more
    // than 1.5 frame intervals is counted at the stream's frame rate. (Errors are logged as packets go
    // in, frames come out later, so any error so far counts.) In a clean file a gap is the video's own timing.
    const gap = (this.lastDecodedTime - lastTime) * meta.frameRate;
    if (prev !== undefined && pts > prev && this.errors.count > 0 && gap > 1.5) this.lost += Math.round(gap) - 1;
    const index = this.decoded++ + this.lost;
    if (prev === undefined || pts > prev) {
      this.recent.push({ time: this.lastDecodedTime + this.offset, sourceIndex: index, afterBreak: false, decoded: this.decoded, lost: this.lost });
      return;
    }
    const previousTime = seconds(prev);
    const time = seconds(pts);
    if ((this.options.timestampBreaks ?? "rebase") === "error") {
      this.destroy(
        new VideoAnalysisError(
          "VIDEO_INVALID",
          `${meta.path} has a timestamp break: frame ${index} is at ${time.toFixed(3)} s, after a frame at ${previousTime.toFixed(3)} s ` +
            `(timestamps restart or go back, as in concatenated MPEG-TS segments). Set input.timestamp_breaks: rebase in the profile ` +
            `(timestampBreaks: "rebase") to analyse it with continuous time, or remux the file with continuous timestamps.`,
          { details: { file: meta.path, sourceFrameIndex: index, previousTime, time } },
        ),
      );
      return;
    }
    // The same shift as the setpts filter's (rebaseExpression): one source frame interval after the previous frame.
    const before = this.offset;
    this.offset = previousTime + before + 1 / meta.frameRate - time;
    this.breaks.push({ sourceIndex: index, previousTime, time, offset: this.offset });
    this.recent.push({ time: time + this.offset, sourceIndex: index, afterBreak: true, decoded: this.decoded, lost: this.lost });
  }

  /**
   * Frames decoded and lost up to the `frames`-th frame delivered: what a reader stopped early (max frames)
   * decoded for the frames it used, the same in every run (ffmpeg's lead, and the frames already pushed
   * ahead of the consumer, vary).
   */
  countsThrough(frames: number): { decoded: number; lost: number } {
    const i = Math.min(frames, this.through.length / 2) - 1;
    return i < 0 ? { decoded: 0, lost: 0 } : { decoded: this.through[2 * i]!, lost: this.through[2 * i + 1]! };
  }

  /** Pushes every frame whose bytes and timestamp have both arrived; pauses ffmpeg when the stream is full. */
  private drain(): void {
    while (this.complete.length > 0 && this.picked.length > 0 && !this.destroyed) {
      const data = this.complete.shift()!;
      const { timestamp, sourceIndex, afterBreak, decoded, lost } = this.picked.shift()!;
      const plan = this.framePlan!;
      this.through.push(decoded, lost);
      this.lastTimestamp = timestamp;
      const more = this.push({ index: this.pushed++, timestamp, sourceIndex, afterBreak, width: plan.width, height: plan.height, data } satisfies Frame);
      if (!more && this.child && !this.stdoutPaused) {
        this.stdoutPaused = true;
        this.child.stdout.pause();
      }
    }
  }

  private onClose(code: number | null, sig: NodeJS.Signals | null): void {
    if (this.destroyed || this.killedByUs) {
      this.options.signal?.removeEventListener("abort", this.onAbort);
      return;
    }
    const child = this.child;
    if (this.stderrRest) this.onLogLine(this.stderrRest);
    if (this.child !== child) return; // that last line made it fall back
    this.stderrRest = "";
    this.drain();
    if (this.sparse) {
      const planned = this.sparse.selectedPts.length;
      if (code !== 0) return this.fallBack(`ffmpeg could not decode the sparse input (${sig ?? `exit code ${code}`}: ${this.errors.summary()})`);
      if (this.selected !== planned) return this.fallBack(`a sparse decode ended after ${this.selected} of ${planned} planned frames`);
    }
    this.options.signal?.removeEventListener("abort", this.onAbort);
    const err = this.finalError(code, sig);
    if (err) this.destroy(err);
    else this.push(null);
  }

  private finalError(code: number | null, sig: NodeJS.Signals | null): VideoAnalysisError | undefined {
    const meta = this.meta!;
    const plan = this.framePlan!;
    const file = meta.path;
    const bad = (what: string, extra: Record<string, unknown> = {}) =>
      new VideoAnalysisError("VIDEO_INVALID", `${file} ${what}`, {
        details: { file, frames: this.pushed, ffmpegErrors: [...this.errors.last], ...extra },
      });
    if (code !== 0 && this.errors.last.some((l) => /Unrecognized option|Option not found|No such filter/.test(l)))
      return new VideoAnalysisError(
        "FAILED_PRECONDITION",
        `The ffmpeg at ${ffmpegPath()} cannot decode ${file} the way the SDK needs (${this.errors.summary()}); install ffmpeg 5.1 or newer.`,
        { details: { file } },
      );
    if (code !== 0)
      return bad(
        `could not be decoded: ffmpeg ${sig ? `was killed by ${sig}` : `exited with code ${code}`} (${this.errors.summary()}).`,
        { exitCode: code },
      );
    if (this.partialFileSeen)
      return bad(`is truncated: its data ends after ${this.pushed} analysed frames (${this.errors.summary()}). Re-download or re-encode the file.`);
    if (this.current || this.complete.length > 0)
      return bad(`could not be decoded completely: ffmpeg's output ended inside a frame (${this.errors.summary()}).`);
    if (this.pushed === 0) return bad(`has no decodable frames (${this.errors.summary("ffmpeg decoded nothing")}).`);
    if (this.options.strict && this.errors.count > 0)
      return bad(`has decoding errors (${this.errors.count}; last: ${this.errors.summary()}); strict mode rejects them.`);
    // A file cut short whose index still declares the full length: decoding stops early without an exit
    // code. The tolerance covers the last analysis slot, two source frames and container rounding; a
    // container-level duration may also include audio that outlasts the picture, hence the extra second.
    const end = meta.startTime + meta.duration;
    const tolerance = (plan.fps ? 1 / plan.fps : 0) + 2 / meta.frameRate + 0.5 + (meta.durationSource === "container" ? 1 : 0);
    if (meta.duration > 0 && this.lastTimestamp + tolerance < end)
      return bad(
        `is truncated or damaged: decoding stopped at ${this.lastTimestamp.toFixed(2)} s of ${end.toFixed(2)} s declared` +
          `${this.errors.count ? ` (${this.errors.summary()})` : ""}. Re-download or re-encode the file.`,
        { lastTimestamp: this.lastTimestamp, declaredEnd: end },
      );
    return undefined;
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.options.signal?.removeEventListener("abort", this.onAbort);
    const child = this.child;
    if (child && child.exitCode === null && child.signalCode === null) {
      // Nothing more is wanted from ffmpeg: SIGKILL (SIGTERM could leave it blocked writing to the full pipe).
      this.killedByUs = true;
      child.kill("SIGKILL");
    }
    child?.stdout.destroy();
    child?.stderr.destroy();
    this.complete.length = 0;
    this.current = undefined;
    if (error) this.rejectReady(error);
    callback(error);
  }

  override [Symbol.asyncIterator](): AsyncIterableIterator<Frame> {
    return super[Symbol.asyncIterator]() as AsyncIterableIterator<Frame>;
  }
}

/**
 * Decodes `path` to rgb24 (or yuv420p) frames at the analysis rate and size, streamed with backpressure (see
 * FrameReader). Errors (VideoAnalysisError, all naming the file): those of probeVideo; VIDEO_INVALID when
 * ffmpeg fails (with its last error lines), when the file turns out truncated (ffmpeg reports a partial
 * file, or decoding stops well before the declared duration) or yields no frame; CANCELLED on abort.
 * Frames already yielded before a truncation error was found are not taken back: a consumer that writes
 * artifacts must discard them on error (the npz writer's abort()).
 */
export function readFrames(path: string, options: ReadFramesOptions = {}): FrameReader {
  return new FrameReader(path, options);
}
