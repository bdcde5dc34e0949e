export { generateRepository, writeRepository, diffRepository, type RepositoryFiles, type RepositoryDiff, type GenerateOptions } from "./generate.js";
export { preprocessModelPy } from "./python.js";
export { trackFiles } from "./tracks.js";
export { daliModelPy } from "./dali.js";
