import type * as QueueModule from "./queue.js";

export { expandInputs, folderName, VIDEO_EXTENSIONS, type BatchVideo, type ExpandOptions } from "./inputs.js";
export { profileFingerprint, runVideo, type RunVideoOptions, type VideoOutcome } from "./run-video.js";
export { BATCH_FILE, defaultJobs, formatBatchProgress, runBatch, type BatchEntry, type BatchOptions, type BatchProgress, type BatchReport, type VideoStatus } from "./batch.js";
export { redactRedisUrl } from "./redis-url.js";
export type {
  EnqueueOptions, EnqueueReport, QueueStatus, VideoJobData, VideoJobProgress, VideoJobResult, WorkerHandle, WorkerOptions,
} from "./queue.js";

// The queue functions load BullMQ and its Redis client (a second of start-up on a busy machine) only when called.

/** See enqueueVideos in ./queue.ts. */
export async function enqueueVideos(...args: Parameters<typeof QueueModule.enqueueVideos>): ReturnType<typeof QueueModule.enqueueVideos> {
  return (await import("./queue.js")).enqueueVideos(...args);
}

/** See runWorker in ./queue.ts. */
export async function runWorker(...args: Parameters<typeof QueueModule.runWorker>): ReturnType<typeof QueueModule.runWorker> {
  return (await import("./queue.js")).runWorker(...args);
}

/** See queueStatus in ./queue.ts. */
export async function queueStatus(...args: Parameters<typeof QueueModule.queueStatus>): ReturnType<typeof QueueModule.queueStatus> {
  return (await import("./queue.js")).queueStatus(...args);
}
