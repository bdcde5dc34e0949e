export { expandInputs, folderName, VIDEO_EXTENSIONS, type BatchVideo, type ExpandOptions } from "./inputs.js";
export { profileFingerprint, runVideo, type RunVideoOptions, type VideoOutcome } from "./run-video.js";
export { BATCH_FILE, defaultJobs, formatBatchProgress, runBatch, type BatchEntry, type BatchOptions, type BatchProgress, type BatchReport, type VideoStatus } from "./batch.js";
export {
  enqueueVideos, queueStatus, redactRedisUrl, runWorker,
  type EnqueueOptions, type EnqueueReport, type QueueStatus, type VideoJobData, type VideoJobProgress, type VideoJobResult, type WorkerHandle, type WorkerOptions,
} from "./queue.js";
