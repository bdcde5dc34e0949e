// The public API of video-analysis-sdk.
export { VideoAnalysisError, isVideoAnalysisError, type ErrorCode, type ErrorDetails } from "./errors.js";
export {
  DATATYPES, tensor, toRaw, fromRaw, toFloat32, halfToFloat, floatToHalf, bf16ToFloat, floatToBf16, elementCount,
  type DataType, type Tensor, type TensorData,
} from "./tensor.js";
export type { InferenceBackend, InferOptions, InferResult, ModelContract, ModelMetadata, TensorSpec } from "./backend/backend.js";
export { checkContract } from "./backend/contract.js";
export { TritonClient, type TritonClientOptions, type TlsOptions, type ServerMetadata, type RepositoryModel } from "./triton/client.js";
export { InferStream } from "./triton/stream.js";
export { SystemSharedMemory } from "./triton/shared-memory.js";
export type { InferInput, SharedMemoryTensor } from "./triton/wire.js";
export type { RetryPolicy } from "./triton/retry.js";
export { EmbeddedBackend, type EmbeddedBackendOptions } from "./embedded/embedded-backend.js";
