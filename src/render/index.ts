export { renderRun, layersFor, type RenderOptions, type RenderResult } from "./render.js";
export { Annotator, ALL_LAYERS, type Layers, type DrawnBox } from "./annotate.js";
export { loadRun, type RunData } from "./run-data.js";
export { trackColor } from "./colors.js";
