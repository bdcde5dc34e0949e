import { readdir, stat } from "node:fs/promises";
import { basename, extname, isAbsolute, join } from "node:path";
import { glob, isDynamicPattern } from "tinyglobby";
import { yoloClassNames } from "../../detections/class-names.js";
import type { Detections } from "../../detections/detections.js";
import { decodeEnd2End, end2endOutputs, type BoxFormat } from "../../detections/end2end.js";
import { YoloDecoder } from "../../detections/yolo.js";
import { EmbeddedBackend } from "../../embedded/embedded-backend.js";
import { VideoAnalysisError } from "../../errors.js";
import { NORMALIZATIONS } from "../../catalog/normalization.js";
import { letterbox } from "../../preprocess/letterbox.js";
import { normalizeNhwcToNchw } from "../../preprocess/normalize.js";
import type { RgbImage } from "../../preprocess/resize.js";
import { tensor, toFloat32, type Tensor } from "../../tensor.js";
import { numberFlag, parseCommandArgs, required, usageError, type Command } from "../command.js";

const MODEL = "detector";
const END2END = ["num_dets", "det_boxes", "det_scores", "det_classes"];

function classList(flag: string | undefined): number[] | null {
  if (flag === undefined) return null;
  const ids = flag.split(",").map((s) => Number(s.trim()));
  if (ids.some((c) => !Number.isInteger(c) || c < 0)) {
    throw usageError(undefined, `--classes takes class indices separated by commas (e.g. 0,2,5), got "${flag}"`);
  }
  return ids;
}

function round(v: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}

/** Writes `image` with `dets` drawn on it into `dir` (created if needed), named after the input; returns the path. */
async function saveAnnotated(dir: string, imagePath: string, image: RgbImage, dets: Detections, names: readonly string[]): Promise<string> {
  const { drawBox, labelFontSize, lineThickness } = await import("../../render/annotate.js");
  const { GlyphFont } = await import("../../render/font.js");
  const { default: sharp } = await import("sharp");
  const { makeFolders, writeFileAtomic } = await import("../../artifacts/atomic.js");
  const canvas = { width: image.width, height: image.height, data: Uint8Array.from(image.data) };
  const font = await GlyphFont.create(labelFontSize(image.width, image.height), names.join(""));
  const thickness = lineThickness(image.width, image.height);
  for (const r of dets.toRecords()) {
    const [x1, y1, x2, y2] = r.box;
    drawBox(canvas, { x1: x1!, y1: y1!, x2: x2!, y2: y2!, classId: r.classId, score: r.score, trackId: r.trackId ?? -1 }, names, font, thickness);
  }
  const ext = extname(imagePath).toLowerCase();
  const jpeg = ext === ".jpg" || ext === ".jpeg";
  const out = join(dir, `${basename(imagePath, extname(imagePath))}${jpeg ? ".jpg" : ".png"}`);
  try {
    await makeFolders(dir);
  } catch (e) {
    throw new VideoAnalysisError("IO_ERROR", `cannot create --save folder ${dir}: ${(e as Error).message}`, { details: { file: dir }, cause: e });
  }
  const img = sharp(canvas.data, { raw: { width: image.width, height: image.height, channels: 3 } });
  await writeFileAtomic(out, await (jpeg ? img.jpeg({ quality: 90 }) : img.png()).toBuffer());
  return out;
}

const IMAGE_EXTENSIONS = new Set([".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif", ".avif"]);

/**
 * The images named on the command line, in order: files as given, a folder's images (by extension,
 * sorted, not recursive), a glob's matches (sorted). A folder without images or a glob that matches
 * nothing is an error, not a silent skip.
 */
export async function expandImages(inputs: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  for (const input of inputs) {
    const st = await stat(input).catch(() => undefined);
    if (st?.isDirectory()) {
      const files = (await readdir(input)).filter((f) => IMAGE_EXTENSIONS.has(extname(f).toLowerCase())).sort();
      if (files.length === 0) throw new VideoAnalysisError("NOT_FOUND", `folder ${input} holds no images (${[...IMAGE_EXTENSIONS].join(", ")})`);
      out.push(...files.map((f) => join(input, f)));
    } else if (!st && isDynamicPattern(input)) {
      const files = (await glob(input, { onlyFiles: true, expandDirectories: false, absolute: isAbsolute(input) })).sort();
      if (files.length === 0) throw new VideoAnalysisError("NOT_FOUND", `no file matches ${input}`);
      out.push(...files);
    } else {
      out.push(input);
    }
  }
  return out;
}

export const detectCommand: Command = {
  name: "detect",
  summary: "run a YOLO ONNX model in-process on images (files, folders, globs), or send JPEGs to a Triton track D ensemble, and print the detections",
  usage:
    "video-analysis detect (--model M.onnx | --triton HOST:PORT --jpeg-model yolo11x_640_gpu_e2e[_streaming|_batch]) (--image I ... | IMAGE|FOLDER|GLOB ...) [--json] [--conf 0.25] [--iou 0.7] [--max-det 300] [--max-nms 30000] " +
    "[--classes 0,2] [--agnostic] [--multi-label] [--size S] [--box-format xyxy|cxcywh|xywh] [--threads N] [--save DIR]",
  async run(argv) {
    const { values, positionals } = parseCommandArgs(this, argv, {
      image: { type: "string", multiple: true, value: "FILE", description: "an image, a folder of images or a glob (as are the arguments after the options)" },
      model: { type: "string", value: "FILE", description: "a YOLO detection export (.onnx): raw head [1, 4 + classes, N] or End2End outputs" },
      json: { type: "boolean", default: false, description: "print one JSON object per image (one line each) instead of text" },
      conf: { type: "string", value: "C", description: "lowest class score kept, 0 to 1 (default 0.25)" },
      iou: { type: "string", value: "T", description: "IoU above which NMS drops the weaker box, 0 to 1 (default 0.7)" },
      "max-det": { type: "string", value: "N", description: "detections kept per image after NMS (default 300)" },
      "max-nms": { type: "string", value: "N", description: "candidates given to NMS, best first (default 30000)" },
      classes: { type: "string", value: "IDS", description: "keep only these class indices, comma-separated (e.g. 0,2)" },
      agnostic: { type: "boolean", default: false, description: "NMS across classes instead of per class" },
      "multi-label": { type: "boolean", default: false, description: "a candidate may give one detection per class above --conf" },
      size: { type: "string", value: "S", description: "input size for a model with a dynamic input shape (default 640)" },
      "box-format": { type: "string", value: "xyxy|cxcywh|xywh", description: "box layout of an End2End export's det_boxes (default xyxy)" },
      threads: { type: "string", value: "N", description: "onnxruntime intra-op threads (default: onnxruntime's)" },
      triton: { type: "string", value: "HOST:PORT", description: "send each image's JPEG bytes, untouched, to this Triton server's track D ensemble (--jpeg-model) instead of running --model" },
      "jpeg-model": { type: "string", value: "NAME", description: "the track D ensemble (JPEG in, End2End detections out), e.g. yolo11x_640_gpu_e2e" },
      save: { type: "string", value: "DIR", description: "write each image with its boxes drawn (as `render` draws them) into DIR: .jpg for JPEG inputs, else .png" },
    }, true);
    const named = [...(values.image ?? []), ...positionals];
    if (named.length === 0) throw usageError(this, "name at least one image: --image FILE, or images, folders and globs after the options");
    if (values.triton !== undefined || values["jpeg-model"] !== undefined) {
      const triton = required(this, "triton", values.triton);
      const jpegModel = required(this, "jpeg-model", values["jpeg-model"]);
      let code = 0;
      for (const imagePath of await expandImages(named)) code = Math.max(code, await detectTrackD(imagePath, triton, jpegModel, values));
      return code;
    }
    const modelPath = required(this, "model", values.model);
    const conf = numberFlag("conf", values.conf, 0.25, { min: 0, max: 1 });
    const iou = numberFlag("iou", values.iou, 0.7, { min: 0, max: 1 });
    const maxDet = numberFlag("max-det", values["max-det"], 300, { min: 1 });
    const maxNms = numberFlag("max-nms", values["max-nms"], 30000, { min: 1 });
    const classes = classList(values.classes);
    const boxFormat = (values["box-format"] ?? "xyxy") as BoxFormat;
    if (!["xyxy", "cxcywh", "xywh"].includes(boxFormat)) {
      throw usageError(this, `--box-format must be xyxy, cxcywh or xywh, got "${boxFormat}"`);
    }
    const threads = values.threads === undefined ? undefined : numberFlag("threads", values.threads, 1, { min: 1 });

    const images = await expandImages(named);
    // sharp (libvips) is loaded only by the command that decodes an image.
    const { readImageRgb } = await import("../../preprocess/decode-image.js");
    const backend = await EmbeddedBackend.create({ models: { [MODEL]: modelPath }, ...(threads ? { intraOpNumThreads: threads } : {}) });
    try {
      for (const imagePath of images) {
        const t0 = performance.now();
        const image = await readImageRgb(imagePath);
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
        const x = tensor(input.name, "FP32", [1, 3, height, width], normalizeNhwcToNchw(boxed.data, [1, height, width, 3], NORMALIZATIONS.unit));
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
            { conf, maxDet, classes, boxFormat },
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
          const decoder = new YoloDecoder({ conf, iou, maxDet, maxNms, classes, agnostic: values.agnostic, multiLabel: values["multi-label"] });
          dets = decoder.decode(toFloat32(out), out.shape, info);
        }
        const t4 = performance.now();
        const names = yoloClassNames(modelPath, numClasses);

        const records = dets.toRecords().map((r) => ({
          class_id: r.classId,
          class_name: names[r.classId] ?? `class${r.classId}`,
          // The float32 score itself (JSON keeps every bit of it), so it can be compared exactly.
          score: r.score,
          box: r.box.map((v) => round(v, 2)),
        }));
        // --save: the image with its boxes, drawn by the same code as `render` (JPEG for .jpg/.jpeg, else PNG).
        const saved = values.save === undefined ? undefined : await saveAnnotated(values.save, imagePath, image, dets, names);
        if (values.json) {
          console.log(
            JSON.stringify({
              ...(saved ? { saved } : {}),
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
          if (saved) console.log(`  saved ${saved}`);
        }
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
      { conf: numberFlag("conf", values.conf, 0.25, { min: 0, max: 1 }), maxDet: numberFlag("max-det", values["max-det"], 300, { min: 1 }), classes: classList(values.classes) },
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
