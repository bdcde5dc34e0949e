export * from "./schema.js";
export { loadProfile, parseProfile, formatKeyPath, type LocatedIssue, type LoadProfileOptions } from "./load.js";
export { substituteEnv, type Env } from "./env.js";
export { serverModelName, maxInFlight, embeddedModelPath, embeddedWorkers, preprocessWorkers, tritonClientOptions } from "./profile.js";
export type { ProfileIssue } from "./checks.js";
