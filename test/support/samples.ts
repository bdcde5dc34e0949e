import { createServer } from "node:net";
import { floatToBf16, floatToHalf, type DataType, type Tensor } from "../../src/tensor.js";

/** Four values of every Triton datatype, with its edges (min, max, -1, 0, NaN-free), for round trips. */
export const DATATYPE_SAMPLES: Record<DataType, Tensor["data"]> = {
  BOOL: Uint8Array.of(1, 0, 1, 1),
  UINT8: Uint8Array.of(0, 1, 254, 255),
  UINT16: Uint16Array.of(0, 1, 65534, 65535),
  UINT32: Uint32Array.of(0, 1, 4294967294, 4294967295),
  UINT64: BigUint64Array.of(0n, 1n, 2n ** 63n, 2n ** 64n - 1n),
  INT8: Int8Array.of(-128, -1, 0, 127),
  INT16: Int16Array.of(-32768, -1, 0, 32767),
  INT32: Int32Array.of(-(2 ** 31), -1, 0, 2 ** 31 - 1),
  INT64: BigInt64Array.of(-(2n ** 63n), -1n, 0n, 2n ** 63n - 1n),
  FP16: Uint16Array.from([0.5, -2, 65504, 1e-3], floatToHalf),
  BF16: Uint16Array.from([0.5, -2, 3.0e38, 1e-3], floatToBf16),
  FP32: Float32Array.of(0.5, -2.25, 3.4e38, 1e-45),
  FP64: Float64Array.of(0.1, -2.5, 1.7e308, 5e-324),
  BYTES: [Buffer.from("a"), Buffer.from(""), Buffer.from("\u00e9t\u00e9"), Buffer.from([0, 255, 0])],
};

/** A loopback TCP port that was free a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}
