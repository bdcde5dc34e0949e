// The public API of video-analysis-sdk.
export { VideoAnalysisError, isVideoAnalysisError, type ErrorCode, type ErrorDetails } from "./errors.js";
export {
  DATATYPES, tensor, toRaw, fromRaw, toFloat32, halfToFloat, floatToHalf, bf16ToFloat, floatToBf16, elementCount,
  type DataType, type Tensor, type TensorData,
} from "./tensor.js";
export type { InferenceBackend, InferOptions, InferResult, ModelContract, ModelMetadata, TensorSpec } from "./backend/backend.js";
export { checkContract } from "./backend/contract.js";
export { TritonClient, type TritonClientOptions, type TlsOptions, type ServerMetadata, type RepositoryModel, type SharedMemoryMode } from "./triton/client.js";
export { InferStream } from "./triton/grpc/stream.js";
export { SystemSharedMemory } from "./triton/shared-memory.js";
export type { InferInput, SharedMemoryTensor, ProtocolName, SharedMemoryOutputs } from "./triton/protocol.js";
export type { RetryPolicy } from "./triton/retry.js";
export { EmbeddedBackend, type EmbeddedBackendOptions } from "./embedded/embedded-backend.js";

// The pipeline: ModelManager (whole videos, frames from elsewhere, single frames), its results and artifacts.
export {
  ModelManager, analyzeFrames, ProgressReporter, formatProgress, resolveProfile, RunFolder, STAGES,
  type ModelManagerOptions, type RunOptions, type RunResult, type ProcessOptions, type CallOptions, type FrameResult,
  type RgbFrame, type ModelUsage, type Progress, type ProgressMode, type ProfileSource, type ProfileSourceOptions,
  type ArtifactRecord, type ArrayInfo, type Stage, ModelHandle,
} from "./pipeline/index.js";
export { BUILTIN_COMPONENTS, ARTIFACT_FILES } from "./components/builtins.js";
export type { Component, Analyzer, ComponentSetup, ComponentModel, ArtifactSetup, RunEnd, FrameContext } from "./pipeline/component.js";
// Building blocks of a family of one's own (README, "Your own components"): per-frame tables and streamed maps
// written as .npz, resumable with no code of the component's; the generic image classifier is the worked example.
export {
  FrameRows, FrameStamps, MapStream, ArrayLog, openNpz, type FrameRowsSpec, type RowSpec, type ArtifactSink, type ArtifactOptions, type MapOptions,
} from "./pipeline/artifact.js";
export { Column, int64Of } from "./pipeline/columns.js";
export { FittedFrame, type FittedImage } from "./pipeline/frame.js";
export { StageClock } from "./pipeline/stats.js";
export { imageClassifier, type ClassifierResult, type ImageClassifierSettings } from "./components/classifier/index.js";
export { openTopK, topKIndices, type ClassScore } from "./components/top-k.js";
export { normalizeNhwcToNchw, type NormalizeOptions } from "./preprocess/normalize.js";
export { NORMALIZATIONS } from "./catalog/normalization.js";
export type { DepthMap, FlowField, ClipFrameResult, SceneResult, ScenePrediction, SceneLabel } from "./components/builtins.js";
export { MANIFEST_FILE, MANIFEST_VERSION, type Manifest } from "./artifacts/manifest.js";
export {
  Detections, ByteTrack, YoloDecoder, decodeYolo, decodeEnd2End, COCO80_NAMES, yoloClassNames, configClassNames, parseClassNames, readOnnxMetadata, formatMot, parseMot,
  type DetectionRecord, type DetectionsInit, type YoloDecoderOptions, type ByteTrackOptions, type End2EndOutputs, type MotFrames,
} from "./detections/index.js";
// Building blocks for Triton-only users: images in, letterbox and its inverse, .npz out.
export { readImageRgb } from "./preprocess/decode-image.js";
export { letterbox, unletterboxBoxes, type LetterboxInfo, type LetterboxOptions } from "./preprocess/letterbox.js";
export type { RgbImage } from "./preprocess/resize.js";
export { NpzWriter, saveNpz, type NpzWriterOptions, type NpyDtype } from "./artifacts/npz.js";
export { probeVideo, readFrames, type VideoMetadata, type Frame, type ReadFramesOptions } from "./video/index.js";
export { loadProfile, type Profile, type ProfileInput } from "./profiles/index.js";
export { EmbeddedEnsembles } from "./embedded/embedded-ensembles.js";
// Many videos: batch on one machine, and a BullMQ queue for many machines.
export {
  runBatch, runVideo, expandInputs, profileFingerprint, enqueueVideos, runWorker, queueStatus, redactRedisUrl, formatBatchProgress, BATCH_FILE,
  type BatchOptions, type BatchReport, type BatchEntry, type BatchProgress, type BatchVideo, type VideoOutcome, type EnqueueOptions, type EnqueueReport,
  type WorkerOptions, type WorkerHandle, type QueueStatus, type VideoJobData, type VideoJobProgress, type VideoJobResult,
} from "./batch/index.js";
export { renderRun, loadRun, Annotator, type RenderOptions, type RenderResult, type Layers, type RunData } from "./render/index.js";
export { writeReport, REPORT_FILE, type ReportOptions } from "./report/report.js";
export { NpzReader, readNpz, type NpyArray, type NpzOpenOptions } from "./artifacts/npz-reader.js";
// Types the API above names in its signatures, so that users (and the API reference) can name them too.
export type { TensorDataMap } from "./tensor.js";
export type { NmsOptions, BoxNmsOptions } from "./detections/nms.js";
export type { ByteTrackState, ByteTrackVariant, TrackBox, MatchOn } from "./detections/byte-track.js";
export type { KalmanForm } from "./detections/kalman-filter.js";
export type { End2EndOptions, BoxFormat } from "./detections/end2end.js";
export type { ParseMotOptions } from "./detections/mot.js";
export type { Interruption } from "./pipeline/journal.js";
export type { VideoStatus } from "./batch/batch.js";
export type { ExpandOptions } from "./batch/inputs.js";
export type { RunVideoOptions } from "./batch/run-video.js";
export type { OutageRecord, OutageState } from "./triton/outage.js";
export type { ResolvedModel, Routing, LetterboxGeometry, Unavailability } from "./routing/route.js";
export type { ScaleFlags, TimestampBreaks, PixelFormat } from "./video/frame-plan.js";
export type { Rotation, ProbeOptions } from "./video/metadata.js";
export type { DecodeStats } from "./video/frame-reader.js";
export type { ClipData, MapData, DetectionsData, SceneData, Box, Timed } from "./render/run-data.js";
export type { DrawnBox } from "./render/annotate.js";
export type { Rgb } from "./render/colors.js";
export type { Canvas, RgbCanvas } from "./render/raster.js";
export type { YuvCanvas } from "./render/yuv.js";
export type { YuvMatrix } from "./video/color.js";
export type { LoadProfileOptions } from "./profiles/load.js";
export type { NpyInput, NpyDataMap, NpyArrayStream, NpzState, StreamShape } from "./artifacts/npz.js";
export type { DecodingRecord, TimestampsRecord, VideoRecord, DecodeRecord, ReportRecord } from "./artifacts/manifest.js";
export type { CatalogModel, Architecture, BranchSpec, ChecklistLevel, Family, Normalization, ResizeMode, InputKind, RoutingPolicy } from "./catalog/types.js";
