import { readFileSync } from "node:fs";

/** The 80 COCO class names in Ultralytics' order (class index = position). */
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
  const names: string[] = [];
  const text = meta["names"];
  if (text) {
    for (const m of text.matchAll(/(\d+)\s*:\s*(?:'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)")/g)) {
      names[Number(m[1])] = (m[2] ?? m[3] ?? "").replace(/\\(.)/g, "$1");
    }
  }
  return Array.from({ length: numClasses }, (_, i) => names[i] ?? fallback?.[i] ?? `class${i}`);
}
