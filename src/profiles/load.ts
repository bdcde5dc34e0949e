import { readFile } from "node:fs/promises";
import { dirname, isAbsolute, resolve } from "node:path";
import { Document, isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, visit, type Node, type Pair } from "yaml";
import type { z } from "zod";
import { VideoAnalysisError } from "../errors.js";
import { semanticIssues, type ProfileIssue } from "./checks.js";
import { hasSubstitution, substituteEnv, type Env } from "./env.js";
import { componentsSchema, profileSchema, type Profile } from "./schema.js";

/** The built-in components' keys: any other key under `components` is a component of the user's own. */
const BUILTIN_SETTINGS = new Set(Object.keys(componentsSchema.shape));

type Path = (string | number)[];

/** One problem of a profile, located: what PROFILE_INVALID errors carry in `details.issues`. */
export interface LocatedIssue {
  file: string;
  /** Dotted key path with [i] for list items: `routing.fallbacks[0].to`; "" for the whole file. */
  keyPath: string;
  /** 1-based line and column in the file; 0 for a value that overrides laid over the file (no line holds it). */
  line: number;
  column: number;
  /** What was expected, and what the file has. */
  message: string;
}

export interface LoadProfileOptions {
  /** The environment for `${VAR}` substitution; process.env when omitted. */
  env?: Env;
  /** Names of components given in code (ModelManagerOptions.components): their profile entries need no module. */
  components?: readonly string[];
  /**
   * When the text is a file with overrides laid over it (ModelManager's `overrides`): the file's text as
   * written, and the key paths the overrides set. A problem at one of those keys is reported as the
   * overrides' (no line: the file does not hold it); any other at its line in the file as written.
   */
  overrides?: { original: string; paths: ReadonlyArray<readonly (string | number)[]> };
}

/** `a.b[0].c` */
export function formatKeyPath(path: readonly PropertyKey[]): string {
  let s = "";
  for (const k of path) {
    if (typeof k === "number") s += `[${k}]`;
    else s += s ? `.${String(k)}` : String(k);
  }
  return s;
}

function describe(v: unknown): string {
  if (v === undefined) return "nothing";
  if (v === null) return "null";
  if (typeof v === "string") return `"${v.length > 60 ? `${v.slice(0, 57)}...` : v}"`;
  if (Array.isArray(v)) return v.length === 0 ? "an empty list" : `a list of ${v.length} item${v.length === 1 ? "" : "s"}`;
  if (typeof v === "object") return "a mapping";
  return String(v);
}

class Locator {
  constructor(
    private readonly doc: Document,
    private readonly lines: LineCounter,
  ) {}

  private pos(offset: number): { line: number; column: number } {
    const { line, col } = this.lines.linePos(offset);
    return { line: Math.max(line, 1), column: Math.max(col, 1) };
  }

  private pairOf(parent: unknown, key: string | number): Pair | undefined {
    if (!isMap(parent)) return undefined;
    return parent.items.find((p) => isScalar(p.key) && String(p.key.value) === String(key));
  }

  /** Line of the deepest part of `path` that the file has: the key's line for mappings, the value's for scalars. */
  locate(path: Path): { line: number; column: number; found: boolean } {
    for (let n = path.length; n > 0; n--) {
      const parent = n === 1 ? this.doc.contents : this.doc.getIn(path.slice(0, n - 1), true);
      const key = path[n - 1]!;
      const pair = this.pairOf(parent, key);
      if (pair) {
        const value = pair.value as Node | null;
        const at = value && isScalar(value) && value.range ? value.range[0] : (pair.key as Node).range![0];
        return { ...this.pos(at), found: n === path.length };
      }
      if (isSeq(parent) && typeof key === "number") {
        const item = parent.items[key] as Node | undefined;
        if (item?.range) return { ...this.pos(item.range[0]), found: n === path.length };
      }
    }
    const r = (this.doc.contents as Node | null)?.range;
    return { ...this.pos(r ? r[0] : 0), found: path.length === 0 };
  }

  /** The key path at a byte offset: the last key or item that starts at or before it, depth first. */
  pathAt(offset: number): Path {
    const path: Path = [];
    let node = this.doc.contents as unknown;
    for (;;) {
      if (isMap(node)) {
        let hit: Pair | undefined;
        for (const p of node.items) if (isScalar(p.key) && p.key.range && p.key.range[0] <= offset) hit = p;
        if (!hit) return path;
        path.push(String((hit.key as { value: unknown }).value));
        node = hit.value;
      } else if (isSeq(node)) {
        let idx = -1;
        node.items.forEach((it, i) => {
          const r = (it as Node | null)?.range;
          if (r && r[0] <= offset) idx = i;
        });
        if (idx < 0) return path;
        path.push(idx);
        node = node.items[idx];
      } else return path;
    }
  }
}

function issueMessage(issue: z.core.$ZodIssue, actual: unknown, present: boolean): string {
  const got = present ? `, got ${describe(actual)}` : ", but the key is missing";
  switch (issue.code) {
    case "invalid_type": {
      const exp = issue.expected === "int" ? "a whole number" : issue.expected === "object" ? "a mapping" : issue.expected === "array" ? "a list" : `a ${issue.expected}`;
      return `expected ${exp}${got}`;
    }
    case "too_small": {
      if (issue.origin === "array") return `expected at least ${issue.minimum} item${Number(issue.minimum) === 1 ? "" : "s"}${got}`;
      if (issue.origin === "string") return `expected a non-empty string${got}`;
      return `expected a number ${issue.inclusive ? ">=" : ">"} ${issue.minimum}${got}`;
    }
    case "too_big":
      if (issue.origin === "array") return `expected at most ${issue.maximum} items${got}`;
      return `expected a number ${issue.inclusive ? "<=" : "<"} ${issue.maximum}${got}`;
    case "invalid_value":
      return `expected ${issue.values.length === 1 ? JSON.stringify(issue.values[0]) : `one of ${issue.values.map((v) => JSON.stringify(v)).join(", ")}`}${got}`;
    case "invalid_union":
      return `expected one of several forms${got}`;
    default:
      return `${issue.message.replace(/^Invalid input: /, "")}${present ? got : ""}`;
  }
}

function getAt(data: unknown, path: readonly PropertyKey[]): { value: unknown; present: boolean } {
  let v = data;
  for (const k of path) {
    if (v === null || typeof v !== "object" || !(k in (v as object))) return { value: undefined, present: false };
    v = (v as Record<PropertyKey, unknown>)[k];
  }
  return { value: v, present: true };
}

/** The keys a strict object allows at a path of the schema (for "unknown key" messages). */
function allowedKeys(path: readonly PropertyKey[]): string[] {
  let s: z.core.$ZodType = profileSchema;
  const unwrap = (t: z.core.$ZodType): z.core.$ZodType => {
    for (;;) {
      const def = t._zod.def as { innerType?: z.core.$ZodType; in?: z.core.$ZodType };
      if (def.innerType) t = def.innerType;
      else if (def.in) t = def.in;
      else return t;
    }
  };
  for (const k of path) {
    s = unwrap(s);
    const def = s._zod.def as { shape?: Record<string, z.core.$ZodType>; element?: z.core.$ZodType; valueType?: z.core.$ZodType };
    if (def.shape && typeof k === "string" && def.shape[k]) s = def.shape[k]!;
    else if (def.element && typeof k === "number") s = def.element;
    else if (def.valueType) s = def.valueType;
    else return [];
  }
  const def = unwrap(s)._zod.def as { shape?: Record<string, unknown> };
  return def.shape ? Object.keys(def.shape) : [];
}

function fail(file: string, issues: LocatedIssue[]): never {
  issues.sort((a, b) => a.line - b.line || a.column - b.column);
  // Line 0: a value the overrides set, which no line of the file holds.
  const lines = issues.map((i) => `${i.line === 0 ? `${file} (overrides)` : `${file}:${i.line}:${i.column}`}: ${i.keyPath || "(file)"}: ${i.message}`);
  const first = issues[0]!;
  // A file that is not a profile at all can have hundreds of problems; the first ten say enough.
  const shown = lines.length > 10 ? [...lines.slice(0, 10), `... and ${lines.length - 10} more`] : lines;
  const head = issues.length === 1 ? `profile ${lines[0]}` : `profile ${file} has ${issues.length} problems:\n  ${shown.join("\n  ")}`;
  throw new VideoAnalysisError("PROFILE_INVALID", head, {
    details: { file, keyPath: first.keyPath, line: first.line, column: first.column, expected: first.message, issues },
  });
}

/**
 * Parses and validates a profile's text. `file` names it in errors; relative embedded model paths are
 * resolved against its folder. Throws PROFILE_INVALID naming file, key path, line and what was expected.
 */
export function parseProfile(text: string, file: string, options: LoadProfileOptions = {}): Profile {
  const env = options.env ?? process.env;
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const loc = new Locator(doc, lines);
  // Where a key path is: in the file as written (not the text with overrides laid over it), or line 0
  // (LocatedIssue: 0 = set by the overrides) for a key the overrides set, or below one.
  const fileLines = new LineCounter();
  const fileLoc = options.overrides ? new Locator(parseDocument(options.overrides.original, { lineCounter: fileLines }), fileLines) : loc;
  const where = (path: Path): { line: number; column: number } => {
    const set = options.overrides?.paths.some((o) => o.length <= path.length && o.every((k, i) => String(k) === String(path[i])));
    return set ? { line: 0, column: 0 } : fileLoc.locate(path);
  };

  if (doc.errors.length > 0) {
    fail(
      file,
      doc.errors.map((e) => {
        // Point at the first character of the offending token, not the indentation before it.
        let at = e.pos[0];
        while (text[at] === " " || text[at] === "\t") at++;
        const { line, col } = lines.linePos(at);
        return {
          file,
          keyPath: formatKeyPath(loc.pathAt(at)),
          line: Math.max(line, 1),
          column: Math.max(col, 1),
          message: `not valid YAML (${e.code}): ${e.message.split("\n")[0]}`,
        };
      }),
    );
  }

  // ${VAR} substitution in values (never in keys). A plain (unquoted) scalar is re-read after
  // substitution, so `deadline_ms: ${DEADLINE:-30000}` is a number; quoted ones stay strings.
  const issues: LocatedIssue[] = [];
  const fromEnv = new Map<string, string>();
  visit(doc, {
    Scalar(key, node, ancestors) {
      if (key === "key" || typeof node.value !== "string" || !hasSubstitution(node.value)) return;
      const path: Path = [];
      ancestors.forEach((a, i) => {
        const next = ancestors[i + 1] ?? node;
        if (isPair(a) && isScalar(a.key)) path.push(String(a.key.value));
        else if (isSeq(a)) path.push(a.items.indexOf(next as never));
      });
      const original = node.value;
      const sub = substituteEnv(original, env);
      if (sub.missing.length > 0) {
        const at = where(path);
        issues.push({
          file,
          keyPath: formatKeyPath(path),
          line: at.line,
          column: at.column,
          message: `environment variable ${sub.missing.join(", ")} is not set and has no default; set it, or write \${${sub.missing[0]}:-default}`,
        });
        return;
      }
      fromEnv.set(formatKeyPath(path), original);
      if (node.type === "PLAIN") {
        const reread = parseDocument(sub.value).contents;
        node.value = isScalar(reread) && sub.value.trim() !== "" ? reread.value : sub.value;
      } else node.value = sub.value;
    },
  });
  if (issues.length > 0) fail(file, issues);

  const data: unknown = doc.toJS();
  const parsed = profileSchema.safeParse(data);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const paths: Array<{ path: Path; message: string }> = [];
      if (issue.code === "unrecognized_keys") {
        const allowed = allowedKeys(issue.path);
        for (const k of issue.keys) {
          paths.push({ path: [...(issue.path as Path), k], message: `unknown key "${k}"; expected one of: ${allowed.join(", ")}` });
        }
      } else {
        const { value, present } = getAt(data, issue.path);
        const kp = formatKeyPath(issue.path);
        const env = fromEnv.get(kp);
        paths.push({ path: issue.path as Path, message: issueMessage(issue, value, present) + (env ? ` (from ${env})` : "") });
      }
      for (const p of paths) {
        const at = where(p.path);
        issues.push({ file, keyPath: formatKeyPath(p.path), line: at.line, column: at.column, message: p.message });
      }
    }
    fail(file, issues);
  }

  const profile = parsed.data;
  const semantic: ProfileIssue[] = semanticIssues(profile, options.components);
  if (semantic.length > 0) {
    fail(
      file,
      semantic.map((s) => {
        const at = where(s.path);
        return { file, keyPath: formatKeyPath(s.path), line: at.line, column: at.column, message: s.message };
      }),
    );
  }

  // Every relative path in a profile is taken from its folder (an object profile's: ProfileSourceOptions.baseDir).
  const base = dirname(resolve(file));
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(base, p));
  const emb = profile.backend.embedded;
  if (emb) {
    if (emb.models_dir) emb.models_dir = abs(emb.models_dir);
    for (const [k, v] of Object.entries(emb.models)) emb.models[k] = abs(v);
  }
  // Files a component names: `*_path` keys (CLIP's bpe_path), a component of one's own's module and
  // labels, and any component's (embedded) model file.
  for (const [name, c] of Object.entries(profile.components)) {
    if (!c) continue;
    const settings = c as Record<string, unknown>;
    const own = [...(BUILTIN_SETTINGS.has(name) ? [] : ["module", "labels"]), ...(emb ? ["model"] : [])];
    for (const key of Object.keys(settings)) {
      if ((key.endsWith("_path") || own.includes(key)) && typeof settings[key] === "string") settings[key] = abs(settings[key] as string);
    }
  }
  if (profile.output.dir) profile.output.dir = abs(profile.output.dir);
  return profile;
}

/** Reads, substitutes, validates a profile file. Throws PROFILE_INVALID (or IO_ERROR when unreadable). */
export async function loadProfile(file: string, options: LoadProfileOptions = {}): Promise<Profile> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (e) {
    throw new VideoAnalysisError("IO_ERROR", `cannot read profile ${file}: ${(e as Error).message}; pass the path of a YAML profile (see profiles/)`, { cause: e, details: { file } });
  }
  return parseProfile(text, file, options);
}
