import { execFile } from "node:child_process";
import { open, stat, type FileHandle } from "node:fs/promises";
import { resolve } from "node:path";
import ffmpeg from "fluent-ffmpeg";
import type { FfprobeData } from "fluent-ffmpeg";
import { VideoAnalysisError } from "../errors.js";
import { colorOfStream, type VideoColor, type YuvMatrix } from "./color.js";
import { ffmpegFileUrl, ffprobePath } from "./ffmpeg-tools.js";
import { dataEnd, isMp4Container, Mp4Unsupported, readMp4Index, readTrack } from "./mp4-index.js";

/** Clockwise rotation, in degrees, that a player (and ffmpeg's autorotation) applies for display. */
export type Rotation = 0 | 90 | 180 | 270;

/**
 * What ffprobe says about a video's first video stream (cover art attached to audio files does not count).
 *
 * Example (`probeVideo("people_768x432_10fps.mp4")`):
 * ```
 * { path: "/…/people_768x432_10fps.mp4", container: "mov,mp4,m4a,3gp,3g2,mj2", codec: "h264",
 *   pixelFormat: "yuv420p", width: 768, height: 432, rotation: 0, displayWidth: 768, displayHeight: 432,
 *   frameRate: 10, frameRateFraction: "10/1", frameRateSource: "avg_frame_rate", duration: 139.4,
 *   durationSource: "stream", startTime: 0, containerStartTime: 0, frameCount: 1394, frameCountSource: "container",
 *   hasAudio: false, streamIndex: 0, sizeBytes: 3291918, bitRate: 188919, colorMatrix: "bt601", colorSpace: "smpte170m",
 *   colorPrimaries: "smpte170m", colorTransfer: "smpte170m", colorRange: "tv" }
 * ```
 */
export interface VideoMetadata {
  /** Absolute path of the file. */
  path: string;
  /** ffprobe's format name, e.g. "mov,mp4,m4a,3gp,3g2,mj2" or "matroska,webm". */
  container: string;
  /** Codec of the video stream (ffprobe codec_name), e.g. "h264", "hevc", "vp9". */
  codec: string;
  /** Pixel format of the decoded stream, e.g. "yuv420p". */
  pixelFormat: string;
  /** Stored (coded) picture size, before rotation. */
  width: number;
  height: number;
  /**
   * Clockwise rotation for display, from the stream's display matrix (ffprobe side data, whose
   * `rotation` is counter-clockwise, so it is negated here) or else the legacy `rotate` tag; rounded to a
   * multiple of 90. Angles that are not near a multiple of 90 give 0, as ffmpeg does not apply them either.
   */
  rotation: Rotation;
  /** Picture size after rotation: what a player shows and what readFrames yields at full size. */
  displayWidth: number;
  displayHeight: number;
  /** Frames per second, from avg_frame_rate, else r_frame_rate when the average is unknown (0/0). */
  frameRate: number;
  /** The same as the fraction ffprobe gave, e.g. "30000/1001". */
  frameRateFraction: string;
  frameRateSource: "avg_frame_rate" | "r_frame_rate";
  /**
   * Seconds: the video stream's duration, else the container's, else (raw streams such as .h264 that
   * state none) frameCount / frameRate ("estimated").
   */
  duration: number;
  durationSource: "stream" | "container" | "estimated";
  /**
   * Time of the video's first frame in seconds from the start of the file (the stream's start_time minus
   * the container's; usually 0). Frame timestamps from readFrames use this same timeline.
   */
  startTime: number;
  /**
   * The container's start time in the file's own timestamps (ffprobe format start_time; 0 for most MP4,
   * e.g. 1.4 for MPEG-TS). Frame timestamps are the source pts minus this.
   */
  containerStartTime: number;
  /**
   * Number of frames: the container's count (nb_frames, exact for MP4/MOV) when it has one ("container"),
   * else round(duration * frameRate) ("estimated", e.g. Matroska/WebM, whose streams carry no count),
   * else, when the file states no duration either (raw .h264/.hevc), the packets counted by demuxing the
   * whole file without decoding it ("counted").
   */
  frameCount: number;
  frameCountSource: "container" | "estimated" | "counted";
  /** True when the file has at least one audio stream. */
  hasAudio: boolean;
  /** Index of the video stream within the file. */
  streamIndex: number;
  /** File size in bytes. */
  sizeBytes: number;
  /** Overall bit rate in bit/s when the container states one. */
  bitRate?: number;
  /**
   * The matrix the stream's YUV is in: its color_space tag's, BT.601 when it states none (what render
   * draws in); always set by probeVideo. With the colour tags the stream states, in ffprobe's names (what
   * render tags its output with).
   */
  colorMatrix?: YuvMatrix;
  colorSpace?: string;
  colorPrimaries?: string;
  colorTransfer?: string;
  colorRange?: string;
}

export interface ProbeOptions {
  /**
   * Read the packets of the video's last second (one seek, a few hundred KB at most) to catch a file
   * cut short whose index (e.g. an MP4 `moov` written at the start) still declares the full length.
   * Default true.
   */
  checkEnd?: boolean;
}

/** Container formats ffprobe uses for single still pictures. */
function isStillImageFormat(format: string): boolean {
  return format.split(",").some((f) => f === "image2" || f.endsWith("_pipe") || f === "tty");
}

function num(v: unknown): number | undefined {
  if (v === undefined || v === null || v === "" || v === "N/A") return undefined;
  const n = typeof v === "number" ? v : Number(v);
  return Number.isFinite(n) ? n : undefined;
}

/** "30000/1001" -> 29.97...; undefined for "0/0", "N/A" and malformed values. */
export function parseRational(s: unknown): number | undefined {
  if (typeof s === "number") return s > 0 && Number.isFinite(s) ? s : undefined;
  if (typeof s !== "string") return undefined;
  const m = /^(\d+)(?:\/(\d+))?$/.exec(s.trim());
  if (!m) return undefined;
  const n = Number(m[1]);
  const d = m[2] === undefined ? 1 : Number(m[2]);
  return n > 0 && d > 0 ? n / d : undefined;
}

/** Normalises any angle to the clockwise multiple of 90 that ffmpeg's autorotation would apply. */
export function normalizeRotation(clockwiseDegrees: number): Rotation {
  if (!Number.isFinite(clockwiseDegrees)) return 0;
  const quarter = Math.round(clockwiseDegrees / 90);
  if (Math.abs(clockwiseDegrees - quarter * 90) > 1) return 0;
  return ((((quarter % 4) + 4) % 4) * 90) as Rotation;
}

/**
 * The fields of an ffprobe stream (fluent-ffmpeg's FfprobeStream) that say how it is rotated. Declared
 * here so that the SDK's public types need no @types/fluent-ffmpeg.
 */
export interface RotatedStream {
  index?: number;
  rotation?: string | number | undefined;
  tags?: { [tag: string]: unknown } | undefined;
}

/** Clockwise display rotation of a stream as ffprobe (through fluent-ffmpeg) describes it. */
export function streamRotation(stream: RotatedStream): Rotation {
  // fluent-ffmpeg flattens the [SIDE_DATA] block of the display matrix into the stream, so its
  // `rotation` (counter-clockwise degrees, e.g. -90 for a phone held upright) appears as stream.rotation.
  const matrix = num(stream.rotation);
  if (matrix !== undefined) return normalizeRotation(-matrix);
  const tag = num(stream.tags?.rotate);
  if (tag !== undefined) return normalizeRotation(tag);
  return 0;
}

/** Parses a Matroska-style "HH:MM:SS.nnnnnnnnn" duration tag. */
function parseClock(s: unknown): number | undefined {
  if (typeof s !== "string") return undefined;
  const m = /^(\d+):(\d{2}):(\d{2}(?:\.\d+)?)$/.exec(s.trim());
  return m ? Number(m[1]) * 3600 + Number(m[2]) * 60 + Number(m[3]) : undefined;
}

function invalid(path: string, what: string, details: Record<string, unknown> = {}): VideoAnalysisError {
  return new VideoAnalysisError("VIDEO_INVALID", `${path} ${what}`, { details: { file: path, ...details } });
}

/** True when the file starts with an ISO-BMFF box (ftyp, mdat, ...): an MP4/MOV, even a broken one. */
async function looksLikeMp4(path: string): Promise<boolean> {
  const fh = await open(path, "r");
  try {
    const { bytesRead, buffer } = await fh.read(Buffer.alloc(8), 0, 8, 0);
    return bytesRead === 8 && ["ftyp", "mdat", "moov", "free", "wide", "skip", "pnot"].includes(buffer.toString("latin1", 4, 8));
  } finally {
    await fh.close();
  }
}

/** Runs ffprobe through fluent-ffmpeg; rejects with ffprobe's own error lines. */
function ffprobe(path: string): Promise<FfprobeData> {
  ffmpeg.setFfprobePath(ffprobePath());
  return new Promise((resolvePromise, reject) => {
    ffmpeg.ffprobe(ffmpegFileUrl(path), ["-v", "error", "-hide_banner"], (err: unknown, data: FfprobeData) => {
      if (err) reject(err);
      else resolvePromise(data);
    });
  });
}

/** The useful part of an ffprobe failure: its stderr lines without the "file:/path: " prefix. */
function ffprobeReason(err: unknown, path: string): string {
  const text = err instanceof Error ? err.message : String(err);
  const url = ffmpegFileUrl(path);
  const lines = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l && !/^ffprobe exited with code/.test(l))
    .map((l) => (l.startsWith(url + ": ") ? l.slice(url.length + 2) : l).replace(/^\[[^\]]*@ [^\]]*\] /, ""));
  return lines.length ? lines.slice(-3).join("; ") : text;
}

/**
 * Reads a video's metadata with ffprobe (through fluent-ffmpeg) and checks that it is something the SDK
 * can analyse. Every failure is a VideoAnalysisError whose message names the file:
 * - NOT_FOUND: no such file;
 * - VIDEO_INVALID: not a media file ffprobe can read (a text file, an MP4 cut short before its `moov`
 *   index), a still image (JPEG/PNG/...: the SDK analyses videos; make one with
 *   `ffmpeg -loop 1 -i img.jpg -t 1 img.mp4` if that is really wanted), no video stream (audio only),
 *   a video stream without frames, or a file whose data ends before its index says (`checkEnd`);
 * - IO_ERROR: the file exists but cannot be read;
 * - FAILED_PRECONDITION: ffprobe is not installed.
 */
export async function probeVideo(path: string, options: ProbeOptions = {}): Promise<VideoMetadata> {
  return (await probeVideoColor(path, options)).meta;
}

/**
 * probeVideo, and the video stream's colour tags (how render draws in its own colours) from the same
 * ffprobe. @internal
 */
export async function probeVideoColor(path: string, options: ProbeOptions = {}): Promise<{ meta: VideoMetadata; color: VideoColor }> {
  if (typeof path !== "string" || path === "") throw new TypeError("probeVideo: path must be a non-empty string");
  // A URL would become a strange local path: it is refused as what it is.
  const scheme = /^([a-z][a-z0-9+.-]+):\/\//i.exec(path)?.[1]?.toLowerCase();
  if (scheme) {
    throw new VideoAnalysisError("INVALID_ARGUMENT", `${path} is a ${scheme} URL; the SDK reads local video files: download it first (e.g. curl -L -o video.mp4 '${path}') and pass the file's path`, { details: { url: path } });
  }
  const abs = resolve(path);
  let size: number;
  try {
    const st = await stat(abs);
    if (st.isDirectory()) throw invalid(abs, "is a directory, not a video file; pass the path of a video file.");
    size = st.size;
  } catch (e) {
    if (e instanceof VideoAnalysisError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR")
      throw new VideoAnalysisError("NOT_FOUND", `Video file ${abs} does not exist; check the path.`, { details: { file: abs } });
    throw new VideoAnalysisError("IO_ERROR", `Cannot read video file ${abs} (${code ?? String(e)}); check its permissions.`, {
      details: { file: abs },
    });
  }
  if (size === 0) throw invalid(abs, "is empty (0 bytes); it is not a video.");

  let data: FfprobeData;
  try {
    data = await ffprobe(abs);
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    if (/Cannot find ffprobe|ENOENT/.test(msg) && !/No such file or directory/.test(msg))
      throw new VideoAnalysisError(
        "FAILED_PRECONDITION",
        `Cannot run ffprobe to read ${abs}: install ffmpeg (it provides ffprobe) or set FFPROBE_PATH.`,
        { details: { file: abs } },
      );
    const reason = ffprobeReason(e, abs);
    if (/moov atom not found/.test(reason) && (await looksLikeMp4(abs)))
      throw invalid(abs, `is truncated or was not finished: ffprobe found no MP4 index (${reason}). Re-download or re-encode the file.`, { reason });
    if (/Permission denied/.test(reason))
      throw new VideoAnalysisError("IO_ERROR", `Cannot read video file ${abs} (${reason}); check its permissions.`, { details: { file: abs } });
    throw invalid(abs, `is not a video file ffprobe can read (${reason}).`, { reason });
  }

  const format = data.format ?? {};
  const container = String(format.format_name ?? "unknown");
  const streams = data.streams ?? [];
  const videos = streams.filter((s) => s.codec_type === "video" && !num(s.disposition?.attached_pic));
  const audios = streams.filter((s) => s.codec_type === "audio");
  if (videos.length === 0) {
    const held = streams.length
      ? `it holds only ${[...new Set(streams.map((s) => `${s.codec_type ?? "unknown"} (${s.codec_name ?? "?"})`))].join(", ")}`
      : "it holds no streams at all";
    throw invalid(abs, `has no video stream (${held}); pass a video file.`, { container });
  }
  const v = videos[0]!;
  const codec = String(v.codec_name ?? "unknown");
  if (isStillImageFormat(container))
    throw invalid(abs, `is a still image (${codec}), not a video; the SDK analyses videos.`, { container, codec });

  const width = num(v.width) ?? 0;
  const height = num(v.height) ?? 0;
  if (!(width > 0 && height > 0)) throw invalid(abs, `has a video stream without a picture size (${codec}); it cannot be decoded.`);

  const avg = parseRational(v.avg_frame_rate);
  const real = parseRational(v.r_frame_rate);
  const frameRate = avg ?? real;
  if (frameRate === undefined) throw invalid(abs, `has a video stream without a frame rate (${codec}); re-encode it with ffmpeg.`);
  const frameRateFraction = String(avg !== undefined ? v.avg_frame_rate : v.r_frame_rate);

  const streamDuration = num(v.duration) ?? parseClock(v.tags?.DURATION);
  const containerDuration = num(format.duration);
  const nbFrames = num(v.nb_frames);
  let durationSource: VideoMetadata["durationSource"] = streamDuration !== undefined ? "stream" : "container";
  let duration = streamDuration ?? containerDuration;
  let frameCountSource: VideoMetadata["frameCountSource"] = nbFrames !== undefined ? "container" : "estimated";
  let frameCount = nbFrames !== undefined ? Math.round(nbFrames) : Math.round((duration ?? 0) * frameRate);
  if (duration === undefined) {
    if (nbFrames === undefined) {
      frameCount = await countPackets(abs, num(v.index) ?? 0);
      frameCountSource = "counted";
    }
    duration = frameCount / frameRate;
    durationSource = "estimated";
  }
  if (frameCount <= 0) throw invalid(abs, `has a video stream (${codec}) with no frames; there is nothing to analyse.`, { container, codec });

  const streamStart = num(v.start_time) ?? num(format.start_time) ?? 0;
  const containerStart = num(format.start_time) ?? streamStart;
  const rotation = streamRotation(v);
  const swap = rotation === 90 || rotation === 270;
  const bitRate = num(format.bit_rate);
  const color = colorOfStream(v as unknown as Record<string, unknown>);
  const meta: VideoMetadata = {
    path: abs,
    container,
    codec,
    pixelFormat: String(v.pix_fmt ?? "unknown"),
    width,
    height,
    rotation,
    displayWidth: swap ? height : width,
    displayHeight: swap ? width : height,
    frameRate,
    frameRateFraction,
    frameRateSource: avg !== undefined ? "avg_frame_rate" : "r_frame_rate",
    duration,
    durationSource,
    startTime: streamStart - containerStart,
    containerStartTime: containerStart,
    frameCount,
    frameCountSource,
    hasAudio: audios.length > 0,
    streamIndex: num(v.index) ?? 0,
    sizeBytes: size,
    ...(bitRate !== undefined ? { bitRate } : {}),
    colorMatrix: color.matrix,
    ...color.tags,
  };
  // A file without a duration of its own has no index that could declare more than its data holds.
  if ((options.checkEnd ?? true) && durationSource !== "estimated") await checkEnd(meta, streamStart);
  return { meta, color };
}

interface ProcessResult {
  code: number;
  stdout: string;
  stderr: string;
}

function runFfprobe(args: string[]): Promise<ProcessResult> {
  return new Promise((res) => {
    execFile(ffprobePath(), args, { maxBuffer: 64 << 20, timeout: 300_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === "number" ? (err as { code: number }).code : -1) : 0;
      res({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

/** Counts the video packets by demuxing the file (no decoding): for raw streams that state no length. */
async function countPackets(path: string, streamIndex: number): Promise<number> {
  const r = await runFfprobe([
    "-v", "error", "-hide_banner", "-select_streams", String(streamIndex), "-count_packets",
    "-show_entries", "stream=nb_read_packets", "-of", "csv=p=0", ffmpegFileUrl(path),
  ]);
  const n = Number(r.stdout.trim().split(/\r?\n/)[0]);
  return r.code === 0 && Number.isFinite(n) ? n : 0;
}

function truncated(meta: VideoMetadata, why: string): VideoAnalysisError {
  return invalid(
    meta.path,
    `is truncated: its index declares ${meta.duration.toFixed(2)} s of video but the data ends early (${why}). Re-download or re-encode the file.`,
    { reason: why },
  );
}

/**
 * Checks in-process that every sample of an MP4/MOV video track lies inside the file; throws the
 * truncation error if not. False when the index is not one mp4-index reads (the ffprobe check runs then).
 */
async function checkMp4End(meta: VideoMetadata): Promise<boolean> {
  let fh: FileHandle | undefined;
  try {
    fh = await open(meta.path, "r");
    const t = readTrack(await readMp4Index(fh), meta.streamIndex);
    const end = dataEnd(t);
    if (end <= meta.sizeBytes) return true;
    throw truncated(meta, `the video's data runs to byte ${end} of a ${meta.sizeBytes}-byte file`);
  } catch (e) {
    if (e instanceof Mp4Unsupported) return false;
    throw e;
  } finally {
    await fh?.close();
  }
}

/**
 * Reads the packets of the last second of the video stream. A file cut short (its index still declaring
 * the full length) makes the demuxer report "partial file" or return no packets there.
 */
async function checkEnd(meta: VideoMetadata, streamStart: number): Promise<void> {
  if (!(meta.duration > 0)) return;
  // MP4/MOV: the index says where every frame's bytes are, so the check needs no second ffprobe.
  if (isMp4Container(meta.container) && (await checkMp4End(meta))) return;
  // -read_intervals takes the stream's own (absolute) timestamps.
  const from = Math.max(0, streamStart + meta.duration - 1);
  const args = [
    "-v", "error", "-hide_banner",
    "-select_streams", String(meta.streamIndex),
    "-read_intervals", `${from.toFixed(3)}%`,
    "-show_entries", "packet=pts_time,pos,size",
    "-of", "csv=p=0",
    ffmpegFileUrl(meta.path),
  ];
  const { code, stdout, stderr } = await runFfprobe(args);
  const errors = stderr.split(/\r?\n/).map((l) => l.replace(/^\[[^\]]*@ [^\]]*\] /, "").trim()).filter(Boolean);
  const packets = stdout.split(/\r?\n/).filter((l) => l.trim() !== "");
  const partial = errors.find((l) => /partial file|End of file|ended prematurely|truncat/i.test(l));
  let beyond = false;
  let late = 0;
  for (const p of packets) {
    // ffprobe prints the fields in its own order: pts_time, size, pos.
    const [t, sz, pos] = p.split(",").map(Number);
    if (sz !== undefined && pos !== undefined && pos >= 0 && pos + sz > meta.sizeBytes) beyond = true;
    // A seek that found no index reads from the start instead: only packets in the last second count.
    if (t === undefined || Number.isNaN(t) || t >= from - 0.5) late++;
  }
  // An empty read only means truncation when the duration is the video stream's own; a container duration
  // may include audio that runs on after the last picture.
  const empty = late === 0 && meta.durationSource === "stream";
  if (code !== 0 || partial || empty || beyond)
    throw truncated(meta, partial ?? errors.at(-1) ?? (beyond ? "packets extend past the end of the file" : "no packets in the last second"));
}
