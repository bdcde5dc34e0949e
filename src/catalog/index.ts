export * from "./types.js";
export { NORMALIZATIONS } from "./normalization.js";
export {
  FAMILIES, family, familiesOf, slotKey, architectureOf, branchOf, modelName, catalogModel, allModels, repositoryModels,
  findModel, inputValues, readyChecklist, contractFor,
} from "./catalog.js";
export { CLIP_EMBED_DIM, CLIP_TOKENS, clipImage, clipText } from "./families/clip.js";
export { midas } from "./families/midas.js";
export { raft } from "./families/raft.js";
export { PLACES365_CLASSES, places365 } from "./families/places365.js";
export {
  YOLO_CLASSES, YOLO_END2END_MAX_DETECTIONS, BATCHING_TIERS, TIER_SETTINGS, END2END_BATCHING, JPEG_INPUT, trackNames, yolo11, yoloCandidates,
  yoloEnd2EndOutputs, type BatchingTier, type TierSettings,
} from "./families/yolo11.js";
