import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { catalogModel, trackNames, yolo11, BATCHING_TIERS } from "../../src/catalog/index.js";
import { generateRepository } from "../../src/triton-repo/index.js";
import { repoRoot, testdata } from "./testdata.js";

/** The Python that runs the repository's scripts: the project venv of scripts/setup.sh when there is one. */
export const python = existsSync(join(repoRoot, ".venv/bin/python3")) ? join(repoRoot, ".venv/bin/python3") : "python3";

export interface TracksRepositoryOptions {
  /** The YOLO architecture and size served (default yolo11n at 640: the int8 model of the test data). */
  architecture?: string;
  size?: number;
  /** The raw YOLO ONNX (default the test data's yolo11n_int8_<size>.onnx). */
  rawOnnx?: string;
  /** NMS settings baked into the End2End model (default the profile defaults: iou 0.7, conf 0.25). */
  iou?: number;
  conf?: number;
  /**
   * The tiers' queue timeout in us instead of the generated one: the CPU stand-ins are ~100x slower than
   * a GPU, so the seed's 50 ms would reject requests a GPU serves in time (the bench says when it is used).
   */
  queueTimeoutUs?: number;
}

/**
 * Builds the repository of tracks B, C and D for one YOLO model, as `triton-repo --tracks` generates it,
 * for the CPU tritonserver of the tests (scripts/tritonserver-local.sh: python backend and ensembles only):
 * - ensembles (`<m>`, `<m>_e2e`, `<m>_gpu_e2e[_tier]`) and `preprocess_<m>` exactly as generated;
 * - `yolo_preprocess_dali_<S>[_tier]` (backend dali) -> python backend running test/support/dali_standin.py
 *   (same contract, geometry and batching config; KIND_CPU);
 * - `<m>_end2end` -> python backend running test/support/ort_batched_model.py on the End2End ONNX that
 *   scripts/export/yolo_end2end.py builds from the raw model;
 * - `<m>_onnx` -> test/support/ort_python_model.py on the raw model.
 * Returns the model names.
 */
export function buildTracksRepository(dest: string, options: TracksRepositoryOptions = {}): string[] {
  const arch = options.architecture ?? "yolo11n";
  const size = options.size ?? 640;
  const raw = options.rawOnnx ?? testdata("models", `${arch}_int8_${size}.onnx`);
  const m = catalogModel(yolo11, size, arch);
  const keep = new Set([m.name, m.preprocessName!, m.onnxName, ...BATCHING_TIERS.flatMap((t) => Object.values(trackNames(m.name, size, t)))]);
  const all = generateRepository({ architectures: [arch], tracks: true });
  const files = new Map([...all].filter(([p]) => keep.has(p.split("/")[0]!)));
  mkdirSync(dest, { recursive: true });
  for (const [p, content] of files) {
    mkdirSync(join(dest, p, ".."), { recursive: true });
    writeFileSync(join(dest, p), content);
  }

  const cpu = "instance_group [ { count: 1 kind: KIND_CPU } ]";
  const rewrite = (name: string, edit: (config: string) => string, note: string) => {
    const path = join(dest, name, "config.pbtxt");
    writeFileSync(path, `# Rewritten by test/support/tracks-repository.ts: ${note}\n${edit(readFileSync(path, "utf8"))}`);
  };
  const withCpu = (c: string) => (/instance_group\s*\[[\s\S]*?\]\n/.test(c) ? c.replace(/instance_group\s*\[[\s\S]*?\n\]\n/, `${cpu}\n`) : `${c.trimEnd()}\n${cpu}\n`);
  const timeouts = (c: string) => (options.queueTimeoutUs === undefined ? c : c.replace(/default_timeout_microseconds: \d+/, `default_timeout_microseconds: ${options.queueTimeoutUs}`));

  for (const tier of BATCHING_TIERS) {
    const dali = trackNames(m.name, size, tier).dali;
    rewrite(dali, (c) => timeouts(withCpu(c.replace(/^backend: "dali"$/m, 'backend: "python"'))), "DALI -> test/support/dali_standin.py (numpy/PIL) on the CPU");
    copyFileSync(join(repoRoot, "test/support/dali_standin.py"), join(dest, dali, "1/model.py"));
  }
  const e2e = trackNames(m.name, size).end2end;
  rewrite(e2e, (c) => withCpu(c.replace(/^platform: "onnxruntime_onnx"$/m, 'backend: "python"')), "onnxruntime inside the python backend (test/support/ort_batched_model.py)");
  copyFileSync(join(repoRoot, "test/support/ort_batched_model.py"), join(dest, e2e, "1/model.py"));
  const r = spawnSync(python, [join(repoRoot, "scripts/export/yolo_end2end.py"), raw, join(dest, e2e, "1/model.onnx"), "--iou", String(options.iou ?? 0.7), "--conf", String(options.conf ?? 0.25)], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`scripts/export/yolo_end2end.py failed: ${r.stderr || r.stdout || r.error?.message}`);

  rewrite(m.onnxName, (c) => withCpu(c.replace(/^platform: "onnxruntime_onnx"$/m, 'backend: "python"')), "onnxruntime inside the python backend (test/support/ort_python_model.py)");
  copyFileSync(join(repoRoot, "test/support/ort_python_model.py"), join(dest, m.onnxName, "1/model.py"));
  copyFileSync(raw, join(dest, m.onnxName, "1/model.onnx"));
  for (const n of keep) rmSync(join(dest, n, "1/.gitkeep"), { force: true });
  return [...keep].sort();
}

/** Why the python stand-ins cannot run in the server's venv (PIL missing), or undefined. */
export function standInSkipReason(): string | undefined {
  const venv = process.env.TRITON_VENV ?? join(process.env.HOME ?? "", ".cache/video-analysis-sdk/pytriton-venv");
  const r = spawnSync(join(venv, "bin/python"), ["-c", "import PIL"], { encoding: "utf8" });
  return r.status === 0 ? undefined : `the DALI stand-in needs Pillow in the tritonserver venv ${venv}: ${venv}/bin/pip install pillow (scripts/setup.sh does)`;
}
