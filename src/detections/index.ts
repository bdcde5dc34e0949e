/**
 * Detections and tracking: YOLO decoding and NMS with Ultralytics' semantics, End2End outputs, the
 * Detections value every path produces, MOTChallenge rows, and ByteTrack.
 */
export { Detections, type DetectionsInit, type DetectionRecord } from "./detections.js";
export { DEFAULT_NMS_OPTIONS, nonMaxSuppression, resolveNmsOptions, type BoxNmsOptions, type NmsOptions } from "./nms.js";
export { YoloDecoder, decodeYolo, type YoloDecoderOptions } from "./yolo.js";
export { DEFAULT_END2END_OPTIONS, decodeEnd2End, type BoxFormat, type End2EndOptions, type End2EndOutputs } from "./end2end.js";
export { formatMot, parseMot, type MotFrames, type ParseMotOptions } from "./mot.js";
export { BYTETRACK_DEFAULTS, ByteTrack, resolveByteTrackOptions, type ByteTrackOptions, type ByteTrackVariant } from "./byte-track.js";
export { KalmanFilterXyah } from "./kalman-filter.js";
export { LapjvSolver } from "./lapjv.js";
export { COCO80_NAMES, configClassNames, parseClassNames, readOnnxMetadata, yoloClassNames } from "./class-names.js";
export { simdAvailable } from "./score-scan.js";
