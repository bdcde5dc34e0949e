import { pathToFileURL } from "node:url";
import { VideoAnalysisError } from "../errors.js";
import type { Component } from "../pipeline/component.js";
import type { Profile } from "../profiles/schema.js";
import { BUILTIN_COMPONENTS } from "./builtins.js";
import { imageClassifier } from "./classifier/index.js";

/** Keys a FrameResult has of its own: no component's result may stand there. */
const FRAME_KEYS = new Set(["index", "timestamp", "sourceIndex", "width", "height"]);

/** The generic families a profile can name (`components.<name>.family`). */
const FAMILIES: Record<string, (name: string, settings: unknown) => Component> = { image_classifier: imageClassifier };

function isComponent(x: unknown): x is Component {
  const c = x as Component;
  return !!c && typeof c === "object" && typeof c.name === "string" && typeof c.key === "string" && Array.isArray(c.slots) && Array.isArray(c.files) && typeof c.open === "function";
}

/** A profile's `module`: its `default` or `component` export, a Component or a function (name, settings) giving one. */
async function fromModule(name: string, file: string, settings: Record<string, unknown>): Promise<Component> {
  const where = `components.${name}.module`;
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  } catch (e) {
    throw new VideoAnalysisError("PROFILE_INVALID", `${where}: cannot load ${file}: ${(e as Error).message}; give the path of an ES module (.js or .mjs, relative to the profile's folder)`, {
      cause: e,
      details: { file },
    });
  }
  const exported = mod["default"] ?? mod["component"];
  let c: unknown = exported;
  if (typeof exported === "function") {
    try {
      c = await (exported as (n: string, s: unknown) => unknown)(name, settings);
    } catch (e) {
      throw new VideoAnalysisError("PROFILE_INVALID", `${where}: ${file} refused the settings of components.${name}: ${(e as Error).message}`, { cause: e, details: { file } });
    }
  }
  if (!isComponent(c)) {
    throw new VideoAnalysisError("PROFILE_INVALID", `${where}: ${file} exports no component: its default (or \`component\`) export must be a Component (name, key, slots, files, open) or a function (name, settings) returning one`, {
      details: { file },
    });
  }
  if (c.name !== name) throw new VideoAnalysisError("PROFILE_INVALID", `${where}: ${file}'s component is named "${c.name}", the profile names it "${name}"; make them the same`, { details: { file } });
  return c;
}

/**
 * The components a manager composes, in the order their models and artifacts are listed: the built-ins,
 * then those given in code, then those the profile names with a module or a generic family (enabled ones).
 * Names, result keys and files must not clash.
 */
export async function composeComponents(profile: Profile, given: readonly Component[] = []): Promise<Component[]> {
  const out: Component[] = [...BUILTIN_COMPONENTS];
  for (const c of given) {
    if (!isComponent(c)) throw new TypeError("ModelManager: each of options.components must be a Component (name, key, slots, files, open)");
    out.push(c);
  }
  const builtin = new Set(BUILTIN_COMPONENTS.map((c) => c.name));
  for (const [name, raw] of Object.entries(profile.components)) {
    if (builtin.has(name) || !raw || given.some((c) => c.name === name)) continue;
    const s = raw as Record<string, unknown> & { enabled: boolean; module?: string; family?: string };
    if (!s.enabled) continue;
    if (s.module) out.push(await fromModule(name, s.module, s));
    else if (s.family && FAMILIES[s.family]) out.push(FAMILIES[s.family]!(name, s));
  }
  const seen = { name: new Set<string>(), key: new Set<string>(FRAME_KEYS), file: new Set<string>(), slot: new Set<string>() };
  for (const c of out) {
    const clash = (what: keyof typeof seen, value: string) => {
      if (seen[what].has(value)) {
        throw new VideoAnalysisError("INVALID_ARGUMENT", `component ${c.name}: its ${what} "${value}" is taken (by a built-in, another component or a FrameResult field); give it another`, { details: { component: c.name } });
      }
      seen[what].add(value);
    };
    clash("name", c.name);
    clash("key", c.key);
    for (const f of [...c.files, ...(c.optionalFiles ?? [])]) clash("file", f);
    for (const s of c.slots) clash("slot", s);
  }
  return out;
}
