/**
 * Every `@example` of the public API runs. The examples are read from the doc comments of what
 * src/index.ts exports (each exported declaration, and the members of exported classes: what the API
 * reference shows). Every exported class (the list is computed from src/index.ts) must have one in its own
 * doc comment, and so must the building blocks a Triton-only user starts from (BUILDING_BLOCKS, issue 19).
 *
 * Each example is one ES module, as a user would write it: it is type-checked (strict) against the built
 * package entry (`video-analysis-sdk`, its dist/src/index.d.ts), then transpiled and run with node, each in
 * a folder of its own holding:
 * - `bus.jpg` (Ultralytics' test image), `people.mp4` (people walking, 768x432, 10 fps),
 *   `yolo11n.onnx` (the real YOLO11n int8, 640) of ../shared/testdata;
 * - `my_yolo.yaml`: the README's profile (that YOLO as the detections component's own model, in process);
 * - `runs/people/`: the run folder `main` wrote from people.mp4 with it (10 frames at 1 fps), and its
 *   `detections.npz` beside;
 * - `$TRITON_GRPC_URL`: NVIDIA's tritonserver (test/support/real-tritonserver.ts) serving `yolo11x_640`,
 *   the catalog's ensemble (UINT8 NHWC in), with the same real YOLO11n weights inside.
 * An example that imports nothing from "video-analysis-sdk" gets an import of the package's names it uses.
 * An example that fails to type-check, throws, or exits non-zero fails its test.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import ts from "typescript";
import { ModelManager } from "../../src/index.js";
import { buildTestRepository, startRealTriton, type RealTriton } from "../support/real-tritonserver.js";
import { repoRoot, skipUnlessTestdata, testdata } from "../support/testdata.js";

const exec = promisify(execFile);
const PACKAGE = "video-analysis-sdk";

/** What a Triton-only user builds on (issue 19, item 6): each must be exported and have a running example. */
const BUILDING_BLOCKS = [
  "letterbox", "unletterboxBoxes", "readImageRgb", "YoloDecoder", "decodeYolo", "decodeEnd2End", "COCO80_NAMES",
  "formatMot", "parseMot", "NpzWriter", "saveNpz", "NpzReader", "readNpz", "ByteTrack",
];

interface Example {
  /** `Export` or `Export.member`, and its number when it has several. */
  name: string;
  code: string;
}

interface PublicApi {
  /** Every exported name, and whether it is a type only. */
  names: Map<string, { typeOnly: boolean }>;
  classes: string[];
  /** Exports whose own doc comment has an example. */
  documented: Set<string>;
  examples: Example[];
}

/** The `@example` blocks of a doc comment's raw text (code fences stripped: TypeDoc shows unfenced ones as code too). */
function examplesIn(jsDoc: string): string[] {
  const lines = jsDoc
    .replace(/^\/\*\*/, "")
    .replace(/\*\/$/, "")
    .split("\n")
    .map((l) => l.replace(/^\s*\* ?/, ""));
  const out: string[] = [];
  let cur: string[] | undefined;
  for (const line of lines) {
    if (/^@\w+/.test(line)) {
      if (cur) out.push(cur.join("\n"));
      cur = line.startsWith("@example") ? [line.slice("@example".length)] : undefined;
    } else cur?.push(line);
  }
  if (cur) out.push(cur.join("\n"));
  return out
    .map((e) => {
      const fenced = /```\w*\n([\s\S]*?)```/.exec(e);
      return (fenced ? fenced[1]! : e).trim();
    })
    .filter((e) => e !== "");
}

function jsDocExamples(node: ts.Node): string[] {
  return (ts.getJSDocCommentsAndTags(node).filter(ts.isJSDoc) as ts.JSDoc[]).flatMap((d) => examplesIn(d.getText()));
}

/** The public API as src/index.ts exports it, read with the TypeScript compiler. */
function publicApi(): PublicApi {
  const index = join(repoRoot, "src", "index.ts");
  const config = ts.getParsedCommandLineOfConfigFile(join(repoRoot, "tsconfig.json"), {}, { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => {} })!;
  const program = ts.createProgram([index], config.options);
  const checker = program.getTypeChecker();
  const moduleSymbol = checker.getSymbolAtLocation(program.getSourceFile(index)!)!;
  const api: PublicApi = { names: new Map(), classes: [], documented: new Set(), examples: [] };
  const add = (name: string, code: string[]) => code.forEach((c, i) => api.examples.push({ name: code.length > 1 ? `${name} #${i + 1}` : name, code: c }));
  for (const exported of checker.getExportsOfModule(moduleSymbol)) {
    const name = exported.getName();
    const symbol = exported.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exported) : exported;
    api.names.set(name, { typeOnly: (symbol.flags & ts.SymbolFlags.Value) === 0 });
    for (const decl of symbol.declarations ?? []) {
      const own = jsDocExamples(decl);
      if (own.length) api.documented.add(name);
      add(name, own);
      if (ts.isClassDeclaration(decl)) {
        api.classes.push(name);
        for (const m of decl.members) {
          const member = m.name && (ts.isIdentifier(m.name) || ts.isPrivateIdentifier(m.name)) ? m.name.text : "constructor";
          add(`${name}.${member}`, jsDocExamples(m));
        }
      }
    }
  }
  return api;
}

const api = publicApi();

/** The example as a module of its own: the package's names it uses imported, unless it imports them itself. */
function moduleOf(e: Example): string {
  if (e.code.includes(`from "${PACKAGE}"`)) return `${e.code}\nexport {};\n`;
  const used = [...api.names].filter(([n]) => new RegExp(`\\b${n}\\b`).test(e.code)).map(([n, { typeOnly }]) => (typeOnly ? `type ${n}` : n));
  return `import { ${used.join(", ")} } from "${PACKAGE}";\n${e.code}\nexport {};\n`;
}

test("every exported class has an @example in its doc comment, and so does every building block of a Triton-only user", () => {
  assert.ok(api.classes.length >= 20, `classes found in src/index.ts: ${api.classes.join(", ")}`);
  for (const b of BUILDING_BLOCKS) assert.ok(api.names.has(b), `${b} is exported by src/index.ts`);
  const missing = [...api.classes, ...BUILDING_BLOCKS].filter((n) => !api.documented.has(n));
  assert.deepEqual([...new Set(missing)], [], `no @example in the doc comment of: ${[...new Set(missing)].join(", ")}`);
});

// --- running them ----------------------------------------------------------------------------------

const skipData = skipUnlessTestdata("models", "yolo11n_int8_640.onnx") || skipUnlessTestdata("video", "people_768x432_10fps.mp4") || skipUnlessTestdata("images", "bus.jpg");

/** yolo11x_640 (ensemble, preprocess, model) with the real YOLO11n int8 weights as the model. */
function buildYoloRepository(dest: string): string[] {
  const src = mkdtempSync(join(tmpdir(), "vasdk-examples-src-"));
  try {
    for (const m of ["yolo11x_640", "preprocess_yolo11x_640", "yolo11x_640_onnx"]) cpSync(join(repoRoot, "triton/models", m), join(src, m), { recursive: true });
    cpSync(testdata("models", "yolo11n_int8_640.onnx"), join(src, "yolo11x_640.onnx"));
    return buildTestRepository(dest, src, src);
  } finally {
    rmSync(src, { recursive: true, force: true });
  }
}

let server: RealTriton | undefined;
let skipTriton: string | false = skipData;
if (!skipData) {
  const r = await startRealTriton({ build: buildYoloRepository });
  if (r.skip !== undefined) skipTriton = `real tritonserver not run: ${r.skip}`;
  else server = r.server;
}
const work = mkdtempSync(join(tmpdir(), "vasdk-api-examples-"));
after(async () => {
  await server?.stop();
  rmSync(work, { recursive: true, force: true });
});

const slug = (name: string) => name.replace(/[^A-Za-z0-9]+/g, "_");

describe("every @example of the public API runs", { skip: skipData, timeout: 900_000 }, () => {
  let typeErrors = "";
  before(async () => {
    writeFileSync(join(work, "package.json"), JSON.stringify({ type: "module" }));
    mkdirSync(join(work, "node_modules"));
    symlinkSync(repoRoot, join(work, "node_modules", PACKAGE));
    const base = join(work, "base");
    mkdirSync(base);
    symlinkSync(testdata("images", "bus.jpg"), join(base, "bus.jpg"));
    symlinkSync(testdata("video", "people_768x432_10fps.mp4"), join(base, "people.mp4"));
    symlinkSync(testdata("models", "yolo11n_int8_640.onnx"), join(base, "yolo11n.onnx"));
    const profile = ["version: 1", "name: my_yolo", "backend:", "  embedded: {}", "analysis: { fps: 1 }", "components:", "  core_object_detections:", "    model: yolo11n.onnx", "output: { report: false }", ""];
    writeFileSync(join(base, "my_yolo.yaml"), profile.join("\n"));
    const mm = await ModelManager.fromProfile(join(base, "my_yolo.yaml"));
    try {
      await mm.run(join(base, "people.mp4"), { out: join(base, "runs", "people"), maxFrames: 10 });
    } finally {
      await mm.close();
    }
    cpSync(join(base, "runs", "people", "core_object_detections", "detections.npz"), join(base, "detections.npz"));
    for (const e of api.examples) {
      const dir = join(work, "ex", slug(e.name));
      cpSync(base, dir, { recursive: true, verbatimSymlinks: true });
      writeFileSync(join(dir, "example.ts"), moduleOf(e));
    }
    writeFileSync(
      join(work, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: { target: "ES2022", module: "NodeNext", moduleResolution: "NodeNext", lib: ["ES2023"], types: ["node"], typeRoots: [join(repoRoot, "node_modules/@types")], strict: true, noEmit: true, skipLibCheck: false },
        include: ["ex/*/example.ts"],
      }),
    );
    const r = await exec(process.execPath, [join(repoRoot, "node_modules/typescript/bin/tsc"), "-p", work], { cwd: work }).catch((x: { stdout: string }) => ({ stdout: x.stdout }));
    typeErrors = r.stdout;
    // Errors are told per example below; anything else (a broken tsconfig, the package's own declarations) fails here.
    const other = typeErrors.split("\n").filter((l) => l.trim() !== "" && !l.startsWith("ex/") && !l.startsWith(" "));
    assert.deepEqual(other, [], "tsc on the examples");
  });

  for (const e of api.examples) {
    const triton = /TRITON_GRPC_URL/.test(e.code);
    test(e.name, { skip: triton && skipTriton ? skipTriton : false }, async (t) => {
      const dir = join(work, "ex", slug(e.name));
      assert.notEqual(ts.transpileModule(e.code, {}).outputText.replace(/\/\/.*|\/\*[\s\S]*?\*\//g, "").trim(), "", "the example has code, not only comments");
      const errors = typeErrors.split("\n").filter((l) => l.startsWith(`ex/${slug(e.name)}/`));
      assert.deepEqual(errors, [], `the example does not type-check against the package:\n${errors.join("\n")}\n--- example.ts\n${moduleOf(e)}`);
      const js = ts.transpileModule(readFileSync(join(dir, "example.ts"), "utf8"), { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } }).outputText;
      writeFileSync(join(dir, "example.mjs"), js);
      const env = { ...process.env, ...(server ? { TRITON_GRPC_URL: server.address } : {}) };
      try {
        const r = await exec(process.execPath, ["example.mjs"], { cwd: dir, env, timeout: 120_000 });
        // What it printed, beside its comments in the reference: shown in the test's report.
        for (const line of r.stdout.trimEnd().split("\n").slice(0, 12)) t.diagnostic(line.slice(0, 200));
      } catch (x) {
        const f = x as { code?: number; stdout?: string; stderr?: string; message: string };
        assert.fail(`the example failed (exit ${f.code}):\n${f.stderr || f.message}\n${f.stdout ?? ""}\n--- example.ts\n${moduleOf(e)}`);
      }
    });
  }
});
