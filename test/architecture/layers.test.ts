// The house's layering, read from the source imports: the generic pipeline (src/pipeline, less the
// manager) sits below the model families (src/components), and the manager above both. A file of the
// pipeline that imports a family, or a family that imports the manager, fails here. And the generic
// pipeline names no family: the component names and the families' classes appear in none of its files.
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative, resolve, dirname } from "node:path";
import { test } from "node:test";
import { repoRoot } from "../support/testdata.js";

const SRC = join(repoRoot, "src");
const MANAGER = join(SRC, "pipeline", "model-manager.ts");

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? sources(p) : p.endsWith(".ts") ? [p] : [];
  });
}

/** The files a source file imports (relative specifiers, static and dynamic), as absolute .ts paths. */
function imports(file: string): string[] {
  const text = readFileSync(file, "utf8");
  const out: string[] = [];
  for (const m of text.matchAll(/(?:from|import)\s*\(?\s*"(\.{1,2}\/[^"]+)"/g)) out.push(resolve(dirname(file), m[1]!.replace(/\.js$/, ".ts")));
  return out;
}

const inside = (file: string, dir: string) => !relative(dir, file).startsWith("..");

test("src/pipeline (the manager aside) imports nothing from src/components", () => {
  const upward = sources(join(SRC, "pipeline"))
    .filter((f) => f !== MANAGER)
    .flatMap((f) => imports(f).filter((i) => inside(i, join(SRC, "components"))).map((i) => `${relative(repoRoot, f)} -> ${relative(repoRoot, i)}`));
  assert.deepEqual(upward, []);
});

test("src/components imports neither the manager nor anything above it", () => {
  const upward = sources(join(SRC, "components")).flatMap((f) =>
    imports(f)
      .filter((i) => i === MANAGER || inside(i, join(SRC, "batch")) || inside(i, join(SRC, "cli")) || i === join(SRC, "index.ts"))
      .map((i) => `${relative(repoRoot, f)} -> ${relative(repoRoot, i)}`),
  );
  assert.deepEqual(upward, []);
});

test("the layer check sees an upward import when there is one", () => {
  // Proves the pattern reads this repository's import style: the manager does import the families.
  assert.ok(imports(MANAGER).some((i) => inside(i, join(SRC, "components"))));
});

const FAMILY_NAMES = /core_depth_midas|core_optical_flow|core_clip|core_object_detections|"scene"|components\/(depth|flow|clip|scene|detections)\/|(Depth|Flow|Clip|Scene|Detections)(Component|Artifact|Analyzer)|DetectionTracker/;

test("the generic pipeline names no family", () => {
  const named = sources(join(SRC, "pipeline"))
    .filter((f) => f !== MANAGER)
    .flatMap((f) => readFileSync(f, "utf8").split("\n").map((line, i) => [f, i + 1, line] as const))
    .filter(([, , line]) => FAMILY_NAMES.test(line))
    .map(([f, n, line]) => `${relative(repoRoot, f)}:${n}: ${line.trim()}`);
  assert.deepEqual(named, []);
});

/**
 * A family is named only in its folder, the catalog (src/catalog: its models, contracts and profile
 * settings) and the built-in list (src/components/builtins.ts, through which the manager's typed
 * single-frame calls and the package's exports reach them). The renderer and the report know artifacts by
 * the arrays they hold, not by their family.
 */
test("families are named only in their folders, the catalog and the built-in list", () => {
  const allowed = (f: string) => inside(f, join(SRC, "components")) || inside(f, join(SRC, "catalog"));
  const naming = sources(SRC)
    .filter((f) => !allowed(f) && FAMILY_NAMES.test(readFileSync(f, "utf8")))
    .map((f) => relative(repoRoot, f).split("\\").join("/"))
    .sort();
  assert.deepEqual(naming, []);
});
