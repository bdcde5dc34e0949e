import { readFileSync } from "node:fs";

/**
 * The 80 COCO class names in Ultralytics' order (class index = position).
 *
 * @example
 * console.log(COCO80_NAMES.length, COCO80_NAMES[0], COCO80_NAMES[5]); // 80 person bus
 */
export const COCO80_NAMES: readonly string[] = Object.freeze([
  "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
  "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
  "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
  "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard",
  "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
  "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
  "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard",
  "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors",
  "teddy bear", "hair drier", "toothbrush",
]);

/** Reads a protobuf varint at `o`; returns [value, next offset]. Values above 2^53 lose precision (never needed here). */
function varint(buf: Uint8Array, o: number): [number, number] {
  let v = 0;
  let mul = 1;
  for (;;) {
    if (o >= buf.length) throw new RangeError("truncated varint");
    const b = buf[o++]!;
    v += (b & 0x7f) * mul;
    if ((b & 0x80) === 0) return [v, o];
    mul *= 128;
  }
}

/**
 * The `metadata_props` of an ONNX model (ModelProto field 14: key/value strings), read by walking the
 * file's top-level protobuf fields without decoding the graph. Ultralytics exports put `names`,
 * `imgsz`, `stride`, `task` there.
 */
export function readOnnxMetadata(path: string): Record<string, string> {
  const buf = readFileSync(path);
  const out: Record<string, string> = {};
  let o = 0;
  while (o < buf.length) {
    let key: number;
    [key, o] = varint(buf, o);
    const field = Math.floor(key / 8);
    const wire = key & 7;
    if (wire === 0) [, o] = varint(buf, o);
    else if (wire === 1) o += 8;
    else if (wire === 5) o += 4;
    else if (wire === 2) {
      let len: number;
      [len, o] = varint(buf, o);
      if (field === 14) {
        const entry = buf.subarray(o, o + len);
        let p = 0;
        let k = "";
        let v = "";
        while (p < entry.length) {
          let t: number;
          let l: number;
          [t, p] = varint(entry, p);
          if ((t & 7) !== 2) break;
          [l, p] = varint(entry, p);
          const s = entry.subarray(p, p + l).toString("utf8");
          if (t >> 3 === 1) k = s;
          else if (t >> 3 === 2) v = s;
          p += l;
        }
        if (k) out[k] = v;
      }
      o += len;
    } else break; // groups (3, 4) do not occur in ONNX files
  }
  return out;
}

/**
 * Class names written as Ultralytics writes them (a Python dict literal, "{0: 'person', 1: 'bicycle'}"),
 * as a JSON list or object, or one name per line; undefined when the text holds none.
 */
export function parseClassNames(text: string): string[] | undefined {
  const t = text.trim();
  if (!t) return undefined;
  const names: string[] = [];
  if (t.startsWith("[")) {
    try {
      const list: unknown = JSON.parse(t);
      return Array.isArray(list) && list.length > 0 && list.every((x) => typeof x === "string") ? (list as string[]) : undefined;
    } catch {
      return undefined;
    }
  }
  if (t.startsWith("{")) {
    for (const m of t.matchAll(/(?:^|[{,])\s*["']?(\d+)["']?\s*:\s*(?:'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)")/g)) {
      names[Number(m[1])] = (m[2] ?? m[3] ?? "").replace(/\\(.)/g, "$1");
    }
  } else names.push(...t.split(/\r?\n/).map((l) => l.trim()));
  return names.length ? Array.from(names, (n, i) => n ?? `class${i}`) : undefined;
}

/** The string value of a Triton config parameter, as either protocol's JSON gives it. */
function configParameter(config: Record<string, any>, key: string): string | undefined {
  const p = config?.parameters?.[key];
  const v: unknown = p?.string_value ?? p?.stringValue;
  return typeof v === "string" ? v : undefined;
}

/**
 * Class names a model on Triton declares in its config: `parameters { key: "names" value { string_value:
 * "..." } }` (Ultralytics' dict literal, a JSON list, or one name per line), on the model itself or, for an
 * ensemble, on one of its steps. Undefined when there is none or the backend serves no configs. (Triton
 * does not serve a `label_filename`'s content, and its metadata carries no names: the parameter is the way.)
 */
export async function configClassNames(backend: { modelConfig?(model: string): Promise<Record<string, any>> }, model: string): Promise<string[] | undefined> {
  if (!backend.modelConfig) return undefined;
  const read = async (name: string) => {
    try {
      return await backend.modelConfig!(name);
    } catch {
      return undefined; // names are for display: a config that cannot be read leaves the defaults
    }
  };
  const config = await read(model);
  if (!config) return undefined;
  const own = configParameter(config, "names");
  if (own) return parseClassNames(own);
  const steps: Array<Record<string, any>> = config.ensemble_scheduling?.step ?? config.ensembleScheduling?.step ?? [];
  for (const step of steps) {
    const name: unknown = step.model_name ?? step.modelName;
    if (typeof name !== "string") continue;
    const text = configParameter((await read(name)) ?? {}, "names");
    if (text) return parseClassNames(text);
  }
  return undefined;
}

/**
 * Class names of a YOLO ONNX export: its `names` metadata (a Python dict literal such as
 * "{0: 'person', 1: 'bicycle'}"), else COCO's 80 names when the model has 80 classes, else
 * "class<i>" (also without a file: a model on Triton). Never throws on a malformed file: names are for display.
 */
export function yoloClassNames(path: string | undefined, numClasses: number): string[] {
  return modelClassNames(path, numClasses, numClasses === 80 ? COCO80_NAMES : undefined);
}

/**
 * Class names from an ONNX model's `names` metadata (Ultralytics' dict literal), else `fallback`, else
 * "class<i>". Never throws on a malformed file: names are for display.
 */
export function modelClassNames(path: string | undefined, numClasses: number, fallback?: readonly string[]): string[] {
  let meta: Record<string, string> = {};
  try {
    if (path !== undefined) meta = readOnnxMetadata(path);
  } catch {
    // unreadable metadata: fall through to the defaults
  }
  return classNamesFor(meta["names"] ? parseClassNames(meta["names"]) : undefined, numClasses, fallback);
}

/** `numClasses` names: the model's own where it has them, else `fallback`'s (COCO's for an 80-class model by default), else "class<i>". */
export function classNamesFor(own: readonly string[] | undefined, numClasses: number, fallback: readonly string[] | undefined = numClasses === 80 ? COCO80_NAMES : undefined): string[] {
  return Array.from({ length: numClasses }, (_, i) => own?.[i] ?? fallback?.[i] ?? `class${i}`);
}
