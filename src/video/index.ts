export { probeVideo, normalizeRotation, parseRational } from "./metadata.js";
export type { ProbeOptions, Rotation, VideoMetadata } from "./metadata.js";
export { readFrames, FrameReader } from "./frame-reader.js";
export type { DecodeStats, Frame, FrameReaderStats, ReadFramesOptions, TimestampBreak } from "./frame-reader.js";
export { planFrames, ffmpegFrameArgs, selectExpression } from "./frame-plan.js";
export type { FramePlan, FramePlanOptions, PixelFormat, ScaleFlags, TimestampBreaks } from "./frame-plan.js";
