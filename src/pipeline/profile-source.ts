import { readFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { isMap, isScalar, parseDocument, stringify } from "yaml";
import { VideoAnalysisError } from "../errors.js";
import { parseProfile, type Env, type Profile } from "../profiles/index.js";

/** A profile: the path of a YAML file, or the same content as an object (a parsed Profile is fine too). */
export type ProfileSource = string | Record<string, unknown>;

export interface ProfileSourceOptions {
  /**
   * Values laid over the profile before it is validated, as nested objects in the YAML's own keys
   * (`{ analysis: { fps: 2 }, backend: { embedded: { models: { yolo11n_640: "m.onnx" } } } }`). Objects
   * merge key by key; anything else (numbers, strings, lists) replaces what the profile has.
   */
  overrides?: Record<string, unknown>;
  /** Environment for `${VAR}` substitution (process.env by default). */
  env?: Env;
  /** Folder that relative model paths of an object profile are taken from (the working folder by default). */
  baseDir?: string;
  /** Components given in code (ModelManagerOptions.components): their profile entries, if any, need no `module`. */
  components?: readonly { readonly name: string }[];
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Date);
}

/** Leaf paths of an overrides object: every non-object value with its key path. */
function leaves(obj: Record<string, unknown>, path: string[] = []): Array<[string[], unknown]> {
  const out: Array<[string[], unknown]> = [];
  for (const [k, v] of Object.entries(obj)) {
    if (isPlainObject(v) && Object.keys(v).length > 0) out.push(...leaves(v, [...path, k]));
    else out.push([[...path, k], v]);
  }
  return out;
}

/** Deep merge for object profiles: objects key by key, anything else replaced. */
function merge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    out[k] = isPlainObject(v) && isPlainObject(b) ? merge(b, v) : v;
  }
  return out;
}

/**
 * Loads and validates a profile from a file or an object, with optional overrides, through the same
 * checks as `loadProfile` (errors name the file, the key path and the line). Returns the profile and
 * the name it is known by (the file's path, or "(profile object)").
 */
export async function resolveProfile(source: ProfileSource, options: ProfileSourceOptions = {}): Promise<{ profile: Profile; file: string }> {
  const env = options.env ?? process.env;
  const given = options.components?.map((c) => c.name) ?? [];
  if (options.overrides !== undefined && !isPlainObject(options.overrides)) throw new TypeError("overrides must be an object in the profile's own keys");
  if (typeof source === "string") {
    if (source === "") throw new TypeError("the profile must be a path or an object");
    let text: string;
    try {
      text = await readFile(source, "utf8");
    } catch (e) {
      throw new VideoAnalysisError("IO_ERROR", `cannot read profile ${source}: ${(e as Error).message}; pass the path of a YAML profile (see profiles/)`, {
        cause: e,
        details: { file: source },
      });
    }
    let overrides: { original: string; paths: string[][] } | undefined;
    if (options.overrides && Object.keys(options.overrides).length > 0) {
      overrides = { original: text, paths: leaves(options.overrides).map(([path]) => path) };
      const doc = parseDocument(text);
      if (doc.errors.length === 0 && isMap(doc.contents)) {
        for (const [path, value] of leaves(options.overrides)) {
          // A scalar in the way of a nested override (e.g. `models: {}` is a map already) is replaced.
          const parentPath = path.slice(0, -1);
          const parent = parentPath.length ? doc.getIn(parentPath, true) : doc.contents;
          if (parentPath.length && parent !== undefined && (isScalar(parent) || !isMap(parent))) doc.setIn(parentPath, doc.createNode({}));
          doc.setIn(path, doc.createNode(value));
        }
        text = doc.toString();
      }
    }
    return { profile: parseProfile(text, source, { env, components: given, ...(overrides ? { overrides } : {}) }), file: source };
  }
  if (!isPlainObject(source)) throw new TypeError("the profile must be a path or an object");
  const data = options.overrides ? merge(source, options.overrides) : source;
  const file = join(resolve(options.baseDir ?? "."), "(profile object)");
  return { profile: parseProfile(stringify(data), file, { env, components: given }), file: "(profile object)" };
}
