import { VideoAnalysisError } from "../../errors.js";
import { diffRepository, generateRepository, writeRepository } from "../../triton-repo/index.js";
import { parseCommandArgs, required, type Command } from "../command.js";
import { loadProfile } from "../../profiles/index.js";

export const tritonRepoCommand: Command = {
  name: "triton-repo",
  summary: "generate the Triton model repository (ensembles, python preprocess, onnx configs) from the catalog",
  usage: "video-analysis triton-repo --out DIR [--architecture yolo11n ...] [--tracks] [--profile FILE] [--check]",
  async run(argv) {
    const { values } = parseCommandArgs(this, argv, {
      out: { type: "string" },
      architecture: { type: "string", multiple: true },
      check: { type: "boolean" },
      tracks: { type: "boolean" },
      profile: { type: "string" },
    });
    // A profile asking for End2End answers or JPEG input (tracks C/D) gets their models, for its architecture.
    const architectures = [...(values.architecture ?? [])];
    let tracks = values.tracks ?? false;
    if (values.profile) {
      const det = (await loadProfile(values.profile)).components.core_object_detections;
      if (det?.enabled && (det.output_format === "end2end" || det.input === "jpeg")) {
        tracks = true;
        if (det.architecture && !architectures.includes(det.architecture)) architectures.push(det.architecture);
      }
    }
    const out = required(this, "out", values.out);
    let files;
    try {
      files = generateRepository({ architectures, tracks });
    } catch (e) {
      throw new VideoAnalysisError("INVALID_ARGUMENT", `${(e as Error).message}\nusage: ${this.usage}`);
    }
    const models = new Set([...files.keys()].map((p) => p.split("/")[0]));
    if (values.check) {
      const d = await diffRepository(out, files);
      const problems = [
        ...d.missing.map((p) => `missing  ${p}`),
        ...d.changed.map((p) => `changed  ${p}`),
        ...d.extra.map((p) => `extra    ${p}`),
      ];
      if (problems.length === 0) {
        console.log(`${out}: up to date (${models.size} models, ${files.size} files)`);
        return 0;
      }
      console.log(`${out} differs from the catalog's repository; regenerate it with: video-analysis triton-repo --out ${out}`);
      for (const p of problems) console.log(`  ${p}`);
      return 1;
    }
    await writeRepository(out, files);
    console.log(`wrote ${files.size} files of ${models.size} models to ${out}`);
    console.log("each <model>_onnx/1/ still needs your export as model.onnx (see its config.pbtxt)");
    return 0;
  },
};
