import { basename } from "node:path";
import { yoloClassNames } from "../../detections/class-names.js";
import type { Detections } from "../../detections/detections.js";
import { decodeEnd2End, end2endOutputs, type BoxFormat } from "../../detections/end2end.js";
import { YoloDecoder } from "../../detections/yolo.js";
import { EmbeddedBackend } from "../../embedded/embedded-backend.js";
import { VideoAnalysisError } from "../../errors.js";
import { letterbox, toPlanarFloat32 } from "../../preprocess/letterbox.js";
import { tensor, toFloat32, type Tensor } from "../../tensor.js";
import { numberFlag, parseCommandArgs, required, type Command } from "../command.js";

const MODEL = "detector";
const END2END = ["num_dets", "det_boxes", "det_scores", "det_classes"];

function classList(flag: string | undefined): number[] | null {
  if (flag === undefined) return null;
  const ids = flag.split(",").map((s) => Number(s.trim()));
  if (ids.some((c) => !Number.isInteger(c) || c < 0)) {
    throw new VideoAnalysisError("INVALID_ARGUMENT", `--classes takes class indices separated by commas (e.g. 0,2,5), got "${flag}"`);
  }
  return ids;
}

function round(v: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}

export const detectCommand: Command = {
  name: "detect",
  summary: "run a YOLO ONNX model on one image in-process (or send the JPEG to a Triton track D ensemble) and print the detections",
  usage:
    "video-analysis detect --image I (--model M.onnx | --triton HOST:PORT --jpeg-model yolo11x_640_gpu_e2e[_streaming|_batch]) [--json] [--conf 0.25] " +
    "[--iou 0.7] [--max-det 300] [--max-nms 30000] [--classes 0,2] [--agnostic] [--multi-label] [--size S] [--box-format xyxy|cxcywh|xywh] [--threads N]",
  async run(argv) {
    const { values } = parseCommandArgs(this, argv, {
      image: { type: "string" },
      model: { type: "string" },
      json: { type: "boolean", default: false },
      conf: { type: "string" },
      iou: { type: "string" },
      "max-det": { type: "string" },
      "max-nms": { type: "string" },
      classes: { type: "string" },
      agnostic: { type: "boolean", default: false },
      "multi-label": { type: "boolean", default: false },
      size: { type: "string" },
      "box-format": { type: "string" },
      threads: { type: "string" },
      triton: { type: "string" },
      "jpeg-model": { type: "string" },
    });
    const imagePath = required(this, "image", values.image);
    if (values.triton !== undefined || values["jpeg-model"] !== undefined) {
      return detectTrackD(imagePath, required(this, "triton", values.triton), required(this, "jpeg-model", values["jpeg-model"]), values);
    }
    const modelPath = required(this, "model", values.model);
    const confidence = numberFlag("conf", values.conf, 0.25, { min: 0, max: 1 });
    const iou = numberFlag("iou", values.iou, 0.7, { min: 0, max: 1 });
    const maxDet = numberFlag("max-det", values["max-det"], 300, { min: 1 });
    const maxNms = numberFlag("max-nms", values["max-nms"], 30000, { min: 1 });
    const classes = classList(values.classes);
    const boxFormat = (values["box-format"] ?? "xyxy") as BoxFormat;
    if (!["xyxy", "cxcywh", "xywh"].includes(boxFormat)) {
      throw new VideoAnalysisError("INVALID_ARGUMENT", `--box-format must be xyxy, cxcywh or xywh, got "${boxFormat}"`);
    }
    const threads = values.threads === undefined ? undefined : numberFlag("threads", values.threads, 1, { min: 1 });

    const t0 = performance.now();
    // sharp (libvips) is loaded only by the command that decodes an image.
    const { readImageRgb } = await import("../../preprocess/decode-image.js");
    const image = await readImageRgb(imagePath);
    const backend = await EmbeddedBackend.create({ models: { [MODEL]: modelPath }, ...(threads ? { intraOpNumThreads: threads } : {}) });
    try {
      const meta = await backend.modelMetadata(MODEL);
      const input = meta.inputs[0];
      if (!input || input.datatype !== "FP32" || input.shape.length !== 4 || (input.shape[1] !== 3 && input.shape[1] !== -1)) {
        throw new VideoAnalysisError(
          "CONTRACT_MISMATCH",
          `detect expects a YOLO ONNX export taking FP32 [1, 3, H, W] images; ${basename(modelPath)} takes ${input ? `${input.name} ${input.datatype} [${input.shape.join(", ")}]` : "no input"}`,
          { model: MODEL },
        );
      }
      const fallback = values.size !== undefined ? numberFlag("size", values.size, 640, { min: 32 }) : undefined;
      const height = input.shape[2]! > 0 ? input.shape[2]! : (fallback ?? 640);
      const width = input.shape[3]! > 0 ? input.shape[3]! : (fallback ?? 640);
      const t1 = performance.now();
      const { image: boxed, info } = letterbox(image, width, height);
      const x = tensor(input.name, "FP32", [1, 3, height, width], toPlanarFloat32(boxed));
      const t2 = performance.now();
      const result = await backend.infer(MODEL, [x]);
      const t3 = performance.now();

      let dets: Detections;
      let numClasses: number;
      const outNames = Object.keys(result.outputs);
      if (END2END.every((n) => n in result.outputs)) {
        const [numDets, boxes, scores, cls] = END2END.map((n) => result.outputs[n]!) as [Tensor, Tensor, Tensor, Tensor];
        dets = decodeEnd2End(
          end2endOutputs(numDets, boxes, scores, cls),
          { confidence, maxDet, classes, boxFormat },
          info,
        );
        numClasses = Math.max(80, ...Array.from(dets.classIds, (c) => c + 1));
      } else {
        const out: Tensor | undefined = result.outputs[outNames[0]!];
        if (!out) throw new VideoAnalysisError("CONTRACT_MISMATCH", `${basename(modelPath)} has no outputs`, { model: MODEL });
        // A raw YOLO head is [1, 4 + nc, N] with one candidate per cell of the stride 8, 16 and 32 grids.
        const cells = [8, 16, 32].reduce((n, s) => n + Math.ceil(height / s) * Math.ceil(width / s), 0);
        if (out.shape.length !== 3 || out.shape[0] !== 1 || out.shape[1]! < 5 || out.shape[2] !== cells) {
          throw new VideoAnalysisError(
            "CONTRACT_MISMATCH",
            `${basename(modelPath)} gives ${out.name} [${out.shape.join(", ")}], not a YOLO head [1, 4 + classes, ${cells}] for a ${width}x${height} input ` +
              `(nor End2End num_dets/det_boxes/det_scores/det_classes); pass a YOLO detection export`,
            { model: MODEL },
          );
        }
        numClasses = out.shape[1]! - 4;
        const decoder = new YoloDecoder({ confidence, iou, maxDet, maxNms, classes, agnostic: values.agnostic, multiLabel: values["multi-label"] });
        dets = decoder.decode(toFloat32(out), out.shape, info);
      }
      const t4 = performance.now();
      const names = yoloClassNames(modelPath, numClasses);

      const records = dets.toRecords().map((r) => ({
        class_id: r.classId,
        class_name: names[r.classId] ?? `class${r.classId}`,
        score: round(r.score, 4),
        box: r.box.map((v) => round(v, 2)),
      }));
      if (values.json) {
        console.log(
          JSON.stringify({
            image: imagePath,
            model: modelPath,
            image_size: [image.width, image.height],
            input_size: [width, height],
            letterbox: { scale: info.scale, left: info.left, top: info.top, resized: [info.resizedWidth, info.resizedHeight] },
            detections: records,
            timings_ms: {
              decode_image_and_load: round(t1 - t0, 2),
              preprocess: round(t2 - t1, 2),
              inference: round(t3 - t2, 2),
              postprocess: round(t4 - t3, 2),
            },
          }),
        );
      } else {
        console.log(`${basename(imagePath)} ${image.width}x${image.height} -> ${basename(modelPath)} ${width}x${height}: ${records.length} detections`);
        const w = Math.max(5, ...records.map((r) => r.class_name.length));
        for (const r of records) {
          console.log(`  ${r.class_name.padEnd(w)}  ${r.score.toFixed(3)}  [${r.box.map((v) => v.toFixed(1)).join(", ")}]`);
        }
        console.log(`  (preprocess ${(t2 - t1).toFixed(1)} ms, inference ${(t3 - t2).toFixed(1)} ms, decode+NMS ${(t4 - t3).toFixed(2)} ms)`);
      }
      return 0;
    } finally {
      await backend.close();
    }
  },
};

/**
 * Track D from the command line: the image file's bytes go to the ensemble untouched (the server decodes
 * and letterboxes them, DALI), the End2End answer is mapped back with DALI's letterbox geometry.
 */
async function detectTrackD(imagePath: string, url: string, model: string, values: { json?: boolean; conf?: string; "max-det"?: string; classes?: string; size?: string }): Promise<number> {
  const { readFile } = await import("node:fs/promises");
  const { jpegPassThrough } = await import("../../preprocess/jpeg.js");
  const { daliLetterboxGeometry } = await import("../../preprocess/letterbox.js");
  const { TritonClient } = await import("../../triton/client.js");
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(await readFile(imagePath));
  } catch (e) {
    throw new VideoAnalysisError("NOT_FOUND", `cannot read ${imagePath} (${(e as Error).message}); pass the path of a JPEG file`, { cause: e });
  }
  const jpeg = await jpegPassThrough(bytes, imagePath);
  const size = numberFlag("size", values.size, Number(/_(\d+)_gpu_e2e/.exec(model)?.[1] ?? 640), { min: 32 });
  const client = await TritonClient.create({ url });
  try {
    const t0 = performance.now();
    const r = await client.infer(model, [tensor("INPUT__0", "UINT8", [1, bytes.length], bytes)]);
    const ms = performance.now() - t0;
    const o = (n: string) => {
      const t = r.outputs[n];
      if (!t) throw new VideoAnalysisError("CONTRACT_MISMATCH", `${model} answered without ${n}: point --jpeg-model at a track D ensemble (triton-repo --tracks)`, { model });
      return t;
    };
    const info = daliLetterboxGeometry(jpeg.width, jpeg.height, size);
    const dets = decodeEnd2End(
      end2endOutputs(o("num_dets"), o("det_boxes"), o("det_scores"), o("det_classes")),
      { confidence: numberFlag("conf", values.conf, 0.25, { min: 0, max: 1 }), maxDet: numberFlag("max-det", values["max-det"], 300, { min: 1 }), classes: classList(values.classes) },
      info,
    );
    const names = yoloClassNames(model, 80);
    const records = dets.toRecords().map((d) => ({ class_id: d.classId, class_name: names[d.classId] ?? `class${d.classId}`, score: round(d.score, 4), box: d.box.map((v) => round(v, 2)) }));
    if (values.json) console.log(JSON.stringify({ image: imagePath, model, image_size: [jpeg.width, jpeg.height], wire_bytes: bytes.length, letterbox: { scale: info.scale, left: info.left, top: info.top, resized: [info.resizedWidth, info.resizedHeight] }, detections: records, round_trip_ms: round(ms, 2) }));
    else {
      console.log(`${basename(imagePath)} ${jpeg.width}x${jpeg.height} -> ${model} (${bytes.length} JPEG bytes, ${ms.toFixed(1)} ms): ${records.length} detections`);
      for (const d of records) console.log(`  ${d.class_name.padEnd(14)} ${d.score.toFixed(2)}  [${d.box.join(", ")}]`);
    }
    return 0;
  } finally {
    await client.close();
  }
}
