export {
  resolveModelMapping, routableModels, letterboxGeometry, analysisSize,
  type VideoMetadata, type ResolvedModel, type Routing, type RouteOptions, type LetterboxGeometry, type Unavailability,
} from "./route.js";
