import { spawn, type ChildProcessByStdio } from "node:child_process";
import { randomBytes } from "node:crypto";
import { rename, rm } from "node:fs/promises";
import type { Readable, Writable } from "node:stream";
import { VideoAnalysisError } from "../errors.js";
import type { VideoColor } from "../video/color.js";
import { ErrorTail, ffmpegFileUrl, ffmpegPath } from "../video/ffmpeg-tools.js";
import { frameByteSize } from "../video/frame-plan.js";

export interface EncoderOptions {
  width: number;
  height: number;
  /** Frames per second of the output. */
  fps: number;
  /** x264's constant rate factor (default 20: annotations stay crisp). */
  crf?: number;
  /** x264's preset (default "veryfast"). */
  preset?: string;
  /** The source's colour tags, given to the frames (and so to the MP4): they are the source's pixels. */
  color?: VideoColor["tags"];
}

/** The x264 arguments shared by the renderer and the bench's ffmpeg-alone baseline. */
export function x264Args(o: Pick<EncoderOptions, "crf" | "preset">): string[] {
  return ["-c:v", "libx264", "-preset", o.preset ?? "veryfast", "-crf", String(o.crf ?? 20), "-pix_fmt", "yuv420p", "-movflags", "+faststart"];
}

/**
 * Encodes yuv420p frames (limited range: the frame reader's pixelFormat "yuv420p") written to ffmpeg's
 * stdin into an H.264 MP4 (yuv420p, +faststart), with no colour conversion on the way to x264.
 * Backpressure: write() resolves once the pipe takes the frame (it waits for 'drain' when ffmpeg is
 * behind), so at most one frame waits in Node however long the video. The file appears at `path` only when finish() succeeds
 * (written under a temporary name, then renamed); abort() kills ffmpeg and deletes it.
 */
export class Mp4Encoder {
  private readonly child: ChildProcessByStdio<Writable, null, Readable>;
  private readonly temp: string;
  private readonly errors = new ErrorTail(4);
  private readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private failed: Error | undefined;
  frames = 0;

  constructor(
    readonly path: string,
    readonly options: EncoderOptions,
  ) {
    const { width, height, fps, color } = options;
    this.temp = `${path}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`;
    // The input's colour tags (ffmpeg passes them on to x264's VUI).
    const tags = [
      "-color_range", "tv",
      ...(color?.colorSpace ? ["-colorspace", color.colorSpace] : []),
      ...(color?.colorPrimaries ? ["-color_primaries", color.colorPrimaries] : []),
      ...(color?.colorTransfer ? ["-color_trc", color.colorTransfer] : []),
    ];
    const args = [
      "-hide_banner", "-nostdin", "-loglevel", "error",
      "-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", `${width}x${height}`, "-framerate", String(fps), ...tags, "-i", "pipe:0",
      // yuv420p needs even sizes: an odd edge gets one padded row or column.
      "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2",
      ...x264Args(options),
      "-f", "mp4", "-y", ffmpegFileUrl(this.temp),
    ];
    this.child = spawn(ffmpegPath(), args, { stdio: ["pipe", "ignore", "pipe"] });
    this.child.stderr.setEncoding("utf8");
    this.child.stderr.on("data", (s: string) => s.split("\n").filter((l) => l.trim()).forEach((l) => this.errors.add(l)));
    this.child.stdin.on("error", (e) => {
      this.failed ??= e;
    });
    this.exited = new Promise((resolve) => {
      this.child.on("error", (e) => {
        this.failed ??= e;
        resolve({ code: null, signal: null });
      });
      this.child.on("close", (code, signal) => resolve({ code, signal }));
    });
  }

  /** Process id of ffmpeg. */
  get pid(): number | undefined {
    return this.child.pid;
  }

  /**
   * Sends one frame (frameByteSize bytes of the pixel format). `done` is called once the pipe no longer
   * needs the bytes (the caller may then reuse the buffer).
   */
  async write(frame: Uint8Array, done?: () => void): Promise<void> {
    const { width, height } = this.options;
    const size = frameByteSize("yuv420p", width, height);
    if (frame.byteLength !== size) throw new RangeError(`Mp4Encoder.write: a frame is ${size} bytes, got ${frame.byteLength}`);
    this.check();
    const ok = this.child.stdin.write(frame, () => done?.());
    this.frames++;
    if (!ok) {
      await new Promise<void>((resolve) => {
        const go = () => {
          this.child.stdin.off("drain", go);
          this.child.off("close", go);
          resolve();
        };
        this.child.stdin.on("drain", go);
        this.child.on("close", go);
      });
      this.check();
    }
  }

  /** Closes the input, waits for ffmpeg and moves the file into place. */
  async finish(): Promise<void> {
    this.check();
    this.child.stdin.end();
    const { code, signal } = await this.exited;
    if (code !== 0) {
      await rm(this.temp, { force: true });
      throw this.error(code, signal);
    }
    await rename(this.temp, this.path);
  }

  /** Kills ffmpeg and removes the partial file. Safe to call more than once. */
  async abort(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill("SIGKILL");
    this.child.stdin.destroy();
    await this.exited;
    await rm(this.temp, { force: true });
  }

  private check(): void {
    if (this.failed || this.child.exitCode !== null) throw this.error(this.child.exitCode, this.child.signalCode);
  }

  private error(code: number | null, signal: NodeJS.Signals | null): VideoAnalysisError {
    const how = this.failed ? this.failed.message : signal ? `killed by ${signal}` : `exit status ${code}`;
    const hint = (this.failed as NodeJS.ErrnoException | undefined)?.code === "ENOENT" ? "; install ffmpeg or set FFMPEG_PATH" : "";
    return new VideoAnalysisError("IO_ERROR", `ffmpeg could not encode ${this.path} (${how}): ${this.errors.summary()}${hint}`, { details: { file: this.path } });
  }
}
