import { readFileSync } from "node:fs";
import type { ModelUsage } from "../pipeline/model.js";
import type { ArtifactRecord } from "../pipeline/artifact.js";
import type { Profile } from "../profiles/schema.js";
import type { ResolvedModel, Routing } from "../routing/route.js";
import type { DecodeStats, FrameReaderStats } from "../video/frame-reader.js";
import type { VideoMetadata } from "../video/metadata.js";
import { writeFileAtomic } from "./atomic.js";
import type { OutageRecord } from "../triton/outage.js";
import type { Interruption } from "../pipeline/journal.js";

/** What the manifest records of the report (`report` key). */
export interface ReportRecord {
  file: string;
  bytes: number;
  thumbnails: {
    max_side: number;
    jpeg_quality: number;
    picker_frames: number;
    max_picker_frames: number;
    track_thumbnails: number;
    depth_thumbnails: number;
    image_bytes: number;
    image_bytes_cap: number;
  };
  /** Where the picker's frames and the track crops came from: taken during the run (`main`), or decoded from the video again. */
  frames_from: "run" | "video";
  /** Why the page has no frames from the video (it could not be read), else absent. */
  no_frames?: string;
}

/**
 * The manifest's format: bumped when a field changes meaning or name. 2: every key snake_case (`video`'s
 * and `analysis.decode`'s were camelCase in 1: `frameRate` is now `frame_rate`).
 */
export const MANIFEST_VERSION = 2;
/** Written last: a run folder with this file is complete; without it, nothing in the folder is to be trusted. */
export const MANIFEST_FILE = "manifest.json";

/** manifest.json: what was analysed, how, by which models, and where the results are. */
export interface Manifest {
  manifest_version: number;
  sdk: { name: string; version: string };
  created_at: string;
  /** ffprobe's view of the input (probeVideo's VideoMetadata, keys in snake_case: `frame_rate`, `display_width`...). */
  video: VideoRecord;
  /** What the components saw: frame size, rate, and the frames analysed. */
  analysis: {
    width: number;
    height: number;
    /** The profile's analysis fps (frames are the first of each 1/fps slot; at most the video's rate). */
    fps: number;
    frames: number;
    first_timestamp: number | null;
    last_timestamp: number | null;
    /** Set when the run stopped after a number of frames (--max-frames). */
    max_frames: number | null;
    /** How ffmpeg decoded the video: sparse (the frames it decoded of those in the stream) or in full, and why. */
    decode: DecodeRecord;
    /** What ffmpeg actually did (counted from its log), against what the file and the plan promised. */
    decoding: DecodingRecord;
    /** Timestamp breaks (decoded times that restart or go back) and what the run did about them. */
    timestamps: TimestampsRecord;
  };
  /** The profile as validated (defaults filled in, secrets masked unless output.mask_secrets is false). */
  profile: Profile;
  profile_source: string;
  routing: Pick<Routing, "video" | "analysis">;
  resolved_model_mapping: Record<string, ResolvedModel>;
  models_used: ModelUsage[];
  artifacts: ArtifactRecord[];
  /** Server outages the run waited out (Triton backend with backend.triton.outage_budget_s). */
  outages: OutageRecord[];
  /** Stops and resumes (`--resume`) of the run; empty for a run that went through at once. */
  interruptions: Interruption[];
  /** report.html (profile output.report, or `video-analysis report`): its size and the cap on its images. */
  report?: ReportRecord;
  timings: {
    wall_ms: number;
    /** Busy time per stage; stages overlap, so they add up to more than the wall time. */
    stages_ms: Record<string, number>;
    frames_per_second: number;
  };
}

/** `fooBar` -> `foo_bar`: the one naming rule of what the SDK writes (camelCase is the TypeScript API's). */
export type SnakeCase<S extends string> = S extends `${infer H}${infer T}` ? `${H extends Lowercase<H> ? H : `_${Lowercase<H>}`}${SnakeCase<T>}` : S;
/** An object's keys in snake_case (one level: the records below are flat). */
export type SnakeKeys<T> = { [K in keyof T as K extends string ? SnakeCase<K> : K]: T[K] };

/** A flat record of the TypeScript API with its keys in snake_case, as files and JSON outputs carry it. */
export function snakeKeys<T extends object>(o: T): SnakeKeys<T> {
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`), v])) as SnakeKeys<T>;
}

/** The manifest's `video`: VideoMetadata with snake_case keys. */
export type VideoRecord = SnakeKeys<VideoMetadata>;
/** The manifest's `analysis.decode`: DecodeStats with snake_case keys (`source_frames`, `planned_frames`). */
export type DecodeRecord = SnakeKeys<DecodeStats>;

/** The manifest's `video` of a probed video. */
export function videoRecord(meta: VideoMetadata): VideoRecord {
  return snakeKeys(meta);
}

/** A manifest's `video` as VideoMetadata again (videoRecord's inverse; a manifest older than a field lacks it). */
export function videoOfRecord(rec: VideoRecord): VideoMetadata {
  return Object.fromEntries(Object.entries(rec).map(([k, v]) => [k.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase()), v])) as unknown as VideoMetadata;
}

/** The manifest's `analysis.decode` of the frame reader's decode plan. */
export function decodeRecord(d: DecodeStats | undefined): DecodeRecord {
  return snakeKeys(d ?? { mode: "full", reason: "not started" });
}

export interface DecodingRecord {
  /** Frames in the video (VideoMetadata.frameCount) and frames ffmpeg was to decode (fewer when sparse). */
  source_frames: number;
  frames_to_decode: number;
  /** Frames ffmpeg decoded (to where the run stopped), and those it lost to decoding errors (from the time gaps). */
  frames_decoded: number;
  frames_lost: number;
  /** Analysis frames the plan expected at the analysis fps, and those the decoder delivered. */
  frames_expected: number;
  frames_delivered: number;
  /** ffmpeg's error-level log lines (damaged packets it concealed or skipped), and the last few of them. */
  errors: number;
  error_lines: string[];
  /** input.strict / --strict: errors stop the run (so a manifest of a strict run always has 0). */
  strict: boolean;
  /** True when the run stopped early on purpose (--max-frames): the counts are up to that point. */
  stopped_early: boolean;
}

export interface TimestampsRecord {
  /** input.timestamp_breaks: "rebase" (the breaks below were rebased) or "error" (a run with a break fails). */
  breaks: "rebase" | "error";
  /** Each break: the video's frame number after it, its time and the previous frame's (seconds, before rebasing), and the offset added from there on. */
  rebased: Array<{ source_frame_index: number; previous_time: number; time: number; offset: number }>;
}

const round6 = (x: number) => Math.round(x * 1e6) / 1e6;

/** The manifest's `analysis.decoding` from the frame reader's counts. */
export function decodingRecord(
  s: FrameReaderStats,
  video: VideoMetadata,
  expected: number,
  delivered: number,
  strict: boolean,
  stoppedEarly: boolean,
  /** FrameReader.countsThrough(delivered), for a run stopped early. */
  through: { decoded: number; lost: number } = { decoded: s.decodedFrames, lost: s.lostFrames },
): DecodingRecord {
  return {
    source_frames: video.frameCount,
    frames_to_decode: s.decode?.mode === "sparse" ? s.decode.plannedFrames : video.frameCount,
    frames_decoded: stoppedEarly ? through.decoded : s.decodedFrames,
    frames_lost: stoppedEarly ? through.lost : s.lostFrames,
    frames_expected: expected,
    frames_delivered: delivered,
    errors: s.ffmpegErrors,
    error_lines: [...s.ffmpegErrorLines],
    strict,
    stopped_early: stoppedEarly,
  };
}

/** The manifest's `analysis.timestamps` from the frame reader's breaks. */
export function timestampsRecord(s: FrameReaderStats, breaks: "rebase" | "error"): TimestampsRecord {
  return {
    breaks,
    rebased: s.timestampBreaks.map((b) => ({ source_frame_index: b.sourceIndex, previous_time: round6(b.previousTime), time: round6(b.time), offset: round6(b.offset) })),
  };
}

let sdkInfo: { name: string; version: string } | undefined;

/** This package's name and version (from its package.json). */
export function sdkVersion(): { name: string; version: string } {
  if (!sdkInfo) {
    try {
      const pkg = JSON.parse(readFileSync(new URL("../../../package.json", import.meta.url), "utf8")) as { name: string; version: string };
      sdkInfo = { name: pkg.name, version: pkg.version };
    } catch {
      sdkInfo = { name: "video-analysis-sdk", version: "unknown" };
    }
  }
  return sdkInfo;
}

/** A copy of the profile with header values (tokens) replaced by "***" when output.mask_secrets is on. */
export function maskedProfile(profile: Profile): Profile {
  const copy = structuredClone(profile);
  if (copy.output.mask_secrets && copy.backend.triton) {
    copy.backend.triton.headers = Object.fromEntries(Object.keys(copy.backend.triton.headers).map((k) => [k, "***"]));
  }
  return copy;
}

/** Writes manifest.json atomically (temporary name, fsync, rename). */
export async function writeManifest(path: string, manifest: Manifest): Promise<void> {
  await writeFileAtomic(path, `${JSON.stringify(manifest, null, 2)}\n`);
}
