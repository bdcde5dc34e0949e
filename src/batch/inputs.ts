import { createHash } from "node:crypto";
import { readFile, stat } from "node:fs/promises";
import { basename, dirname, extname, isAbsolute, join, relative, resolve } from "node:path";
import { glob, isDynamicPattern } from "tinyglobby";
import { VideoAnalysisError } from "../errors.js";

/** The extensions a folder is searched for (lower case, with the dot). */
export const VIDEO_EXTENSIONS = [".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v", ".mpg", ".mpeg", ".ts", ".mts", ".m2ts", ".wmv", ".flv", ".y4m"];

/** One video of a batch: its file and the name of its run folder under the batch's --out. */
export interface BatchVideo {
  /** Absolute path. */
  video: string;
  /** The run folder's name: one path segment, stable for the same input. */
  name: string;
}

export interface ExpandOptions {
  /** Extensions a folder is searched for (default VIDEO_EXTENSIONS). */
  extensions?: string[];
  /** List files (one path per line; `#` starts a comment; relative paths are taken from the list's folder). */
  lists?: string[];
}

/**
 * Expands inputs into videos: a file is itself, a folder is every file below it with a video extension
 * (recursively), a glob (`clips/**\/*.mp4`) is the files it matches, and each list file adds its lines.
 * Each video is named after its path below the input that found it (a folder's files keep their sub-folders
 * in the name: `2024/a.mp4` -> `2024__a`), so the same input gives the same run folders every time.
 * Names that two different videos would share get a short hash of their absolute path (`a-3f9c01d2`), so
 * which video gets which folder does not depend on the order of the inputs. A video found twice is kept once.
 * Errors: NOT_FOUND for an input that names nothing, INVALID_ARGUMENT for a batch of no videos.
 */
export async function expandInputs(inputs: string[], options: ExpandOptions = {}): Promise<BatchVideo[]> {
  const exts = new Set((options.extensions ?? VIDEO_EXTENSIONS).map((e) => (e.startsWith(".") ? e : `.${e}`).toLowerCase()));
  const found: Array<{ video: string; rel: string }> = [];
  const add = (video: string, rel: string) => found.push({ video: resolve(video), rel });

  for (const list of options.lists ?? []) {
    let text: string;
    try {
      text = await readFile(list, "utf8");
    } catch (e) {
      throw new VideoAnalysisError("NOT_FOUND", `cannot read the list file ${list} (${(e as NodeJS.ErrnoException).code ?? String(e)}); pass a text file of video paths, one per line`, { details: { file: list } });
    }
    const lines = text.split(/\r?\n/).map((l) => l.replace(/(^|\s)#.*$/, "").trim()).filter(Boolean);
    for (const line of lines) {
      const p = isAbsolute(line) ? line : join(dirname(resolve(list)), line);
      const st = await stat(p).catch(() => undefined);
      if (!st?.isFile()) throw new VideoAnalysisError("NOT_FOUND", `${p} (listed in ${list}) is not a file; fix the list`, { details: { file: p, list } });
      add(p, basename(p));
    }
  }

  for (const input of inputs) {
    const st = await stat(input).catch(() => undefined);
    if (st?.isFile()) {
      add(input, basename(input));
    } else if (st?.isDirectory()) {
      const files = await glob("**/*", { cwd: input, onlyFiles: true, dot: false, followSymbolicLinks: true });
      const videos = files.filter((f) => exts.has(extname(f).toLowerCase())).sort();
      for (const f of videos) add(join(input, f), f);
    } else if (isDynamicPattern(input)) {
      const files = (await glob(input, { onlyFiles: true, absolute: true, followSymbolicLinks: true })).sort();
      if (files.length === 0) throw new VideoAnalysisError("NOT_FOUND", `the pattern ${input} matches no file; check it (quote it so that the shell does not expand it)`, { details: { pattern: input } });
      // Named below the pattern's fixed part: `in/**/*.mp4` names in/2024/a.mp4 "2024__a".
      const base = resolve(input.split(/[\\/]/).filter((_, i, parts) => !parts.slice(0, i + 1).some((x) => isDynamicPattern(x))).join("/") || ".");
      for (const f of files) add(f, relative(base, f));
    } else {
      throw new VideoAnalysisError("NOT_FOUND", `${input} is neither a file, a folder nor a pattern that matches files; check the path`, { details: { file: input } });
    }
  }

  const seen = new Set<string>();
  const unique = found.filter((f) => (seen.has(f.video) ? false : (seen.add(f.video), true)));
  if (unique.length === 0) throw new VideoAnalysisError("INVALID_ARGUMENT", `no videos in ${[...inputs, ...(options.lists ?? [])].join(", ") || "the inputs"} (folders are searched for ${[...exts].join(" ")})`);

  const base = unique.map((f) => ({ video: f.video, name: folderName(f.rel) }));
  const count = new Map<string, number>();
  for (const b of base) count.set(b.name, (count.get(b.name) ?? 0) + 1);
  return base.map((b) => (count.get(b.name)! > 1 ? { video: b.video, name: `${b.name}-${createHash("sha256").update(b.video).digest("hex").slice(0, 8)}` } : b));
}

/** A path below an input as one folder name: extension dropped, separators `__`, only safe characters. */
export function folderName(rel: string): string {
  const noExt = rel.slice(0, rel.length - extname(rel).length) || rel;
  const name = noExt
    .split(/[\\/]/)
    .join("__")
    .replace(/[^A-Za-z0-9._+-]+/g, "_")
    .replace(/^[.]+/, "_")
    .slice(0, 120);
  return name || "video";
}
