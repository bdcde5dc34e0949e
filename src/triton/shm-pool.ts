import { randomBytes } from "node:crypto";
import { readdirSync, rmSync } from "node:fs";
import { isIP } from "node:net";
import { VideoAnalysisError } from "../errors.js";
import { elementCount, elementSize, fromRaw, toRaw, type DataType, type Tensor } from "../tensor.js";
import type { ModelContract } from "../backend/backend.js";
import { TransportError, type CallOptions, type InferInput, type Protocol, type SharedMemoryTensor, type ProtocolInferOptions, type ProtocolInferResult, type SharedMemoryOutputs } from "./protocol.js";
import { SystemSharedMemory } from "./shared-memory.js";
import { parseEndpoint } from "./target.js";
import { isProcessAlive } from "../pid.js";

/** How tensors travel: in the messages, or through system shared memory on the same host. */
export type SharedMemoryMode = "auto" | "system" | "off";

/** Tensors smaller than this travel in the message: a region's bookkeeping would cost more than it saves. */
const MIN_BYTES = 64 * 1024;

/** Whether every endpoint is this machine (a loopback address or "localhost"). */
export function isLocalEndpoint(urls: readonly string[]): boolean {
  return urls.every((u) => {
    const { host } = parseEndpoint(u);
    return host === "localhost" || (isIP(host) === 4 && host.startsWith("127.")) || host === "::1";
  });
}

/** Removes regions that earlier processes (killed before they could clean up) left in /dev/shm. */
function removeStale(): void {
  let names: string[];
  try {
    names = readdirSync("/dev/shm");
  } catch {
    return;
  }
  for (const n of names) {
    const pid = /^vasdk_shm_(\d+)_/.exec(n)?.[1];
    if (pid && Number(pid) !== process.pid && !isProcessAlive(Number(pid))) rmSync(`/dev/shm/${n}`, { force: true });
  }
}

interface Region {
  name: string;
  shm: SystemSharedMemory;
}

/** The byte size of a tensor of fixed shape, or undefined (a dynamic dimension, or BYTES). */
function fixedBytes(datatype: DataType, shape: readonly number[]): number | undefined {
  const size = elementSize(datatype);
  if (size === undefined || shape.some((d) => d < 0)) return undefined;
  return elementCount(shape) * size;
}

let sequence = 0;
const RUN = randomBytes(4).toString("hex");

/** A region could not be made or registered (the server is on another host, /dev/shm is not writable...). */
export class SharedMemoryUnavailable extends Error {
  constructor(readonly reason: string, options?: { cause?: unknown }) {
    super(reason, options);
  }
}

/**
 * Sends a request's large tensors through system shared memory: each input is copied into a region of
 * the pool (the one copy a caller makes of a new frame) and named in the request; each output whose size
 * the contract fixes is written by the server into a region and copied out once the answer arrives, so the
 * regions go back to the pool at once and nothing the caller keeps points into them. Regions are made and
 * registered as calls need them (one per tensor in flight), kept for later calls, and registered again
 * after a server restart forgot them.
 */
export class SharedMemoryPool {
  private readonly free = new Map<number, Region[]>();
  private readonly all: Region[] = [];
  private closed = false;
  private reregistering: Promise<void> | undefined;

  constructor(private readonly protocol: Protocol) {
    removeStale();
  }

  private async acquire(byteSize: number, o: CallOptions): Promise<Region> {
    const r = this.free.get(byteSize)?.pop();
    if (r) return r;
    // The pid (for sweeping after a crash) and a random part (pids repeat across containers sharing /dev/shm).
    const name = `vasdk_shm_${process.pid}_${RUN}_${sequence++}`;
    let shm: SystemSharedMemory;
    try {
      shm = SystemSharedMemory.create(`/${name}`, byteSize);
    } catch (e) {
      throw new SharedMemoryUnavailable((e as Error).message, { cause: e });
    }
    try {
      await this.protocol.registerSystemSharedMemory(name, shm.key, byteSize, 0, o);
    } catch (e) {
      shm.destroy();
      // A server that is away or slow is no verdict on shared memory; the caller's retries handle it.
      if (e instanceof TransportError && ["UNAVAILABLE", "DEADLINE_EXCEEDED", "CANCELLED"].includes(e.code)) throw e;
      throw new SharedMemoryUnavailable(`the server could not register ${shm.key} (${(e as Error).message})`, { cause: e });
    }
    const region = { name, shm };
    this.all.push(region);
    return region;
  }

  private release(r: Region): void {
    if (this.closed) return;
    const list = this.free.get(r.shm.byteSize) ?? [];
    list.push(r);
    this.free.set(r.shm.byteSize, list);
  }

  /**
   * Registers every region again (after the server restarted and forgot them). The calls that found a
   * region gone share one pass; a region another pass registered already is fine.
   */
  private reregister(o: CallOptions): Promise<void> {
    this.reregistering ??= (async () => {
      try {
        for (const r of [...this.all]) {
          await this.protocol.registerSystemSharedMemory(r.name, r.shm.key, r.shm.byteSize, 0, o).catch((e: unknown) => {
            if (!(e instanceof TransportError && (e.code === "ALREADY_EXISTS" || /already in manager/.test(e.details)))) throw e;
          });
        }
      } finally {
        this.reregistering = undefined;
      }
    })();
    return this.reregistering;
  }

  /**
   * A region of a call that failed (a deadline, a cancel, an error): the server may still be reading or
   * writing it, so it is unregistered and removed, never handed to another call.
   */
  private retire(r: Region): void {
    const i = this.all.indexOf(r);
    if (i >= 0) this.all.splice(i, 1);
    void this.protocol
      .unregisterSystemSharedMemory(r.name, { deadlineMs: 5_000 })
      .catch(() => undefined)
      .finally(() => r.shm.destroy());
  }

  /** One inference with its large tensors in shared memory. */
  async infer(model: string, inputs: readonly InferInput[], options: ProtocolInferOptions & { contract?: ModelContract }, o: CallOptions): Promise<ProtocolInferResult> {
    const held: Region[] = [];
    let ok = false;
    try {
      const sent: InferInput[] = [];
      for (const t of inputs) {
        if (!("data" in t) || t.datatype === "BYTES") {
          sent.push(t);
          continue;
        }
        const bytes = toRaw(t as Tensor);
        if (bytes.byteLength < MIN_BYTES) {
          sent.push(t);
          continue;
        }
        const r = await this.acquire(bytes.byteLength, o);
        held.push(r);
        r.shm.write(0, bytes);
        sent.push({ name: t.name, datatype: t.datatype, shape: t.shape, sharedMemory: { region: r.name, byteSize: bytes.byteLength } } satisfies SharedMemoryTensor);
      }
      const outRegions = new Map<string, { region: Region; datatype: DataType; shape: number[] }>();
      const sharedMemoryOutputs: SharedMemoryOutputs = { ...options.sharedMemoryOutputs };
      const wanted = options.outputs;
      for (const spec of options.contract?.outputs ?? []) {
        if (wanted && !wanted.includes(spec.name)) continue;
        if (sharedMemoryOutputs[spec.name]) continue;
        const n = fixedBytes(spec.datatype, spec.shape);
        if (n === undefined || n < MIN_BYTES) continue;
        const r = await this.acquire(n, o);
        held.push(r);
        outRegions.set(spec.name, { region: r, datatype: spec.datatype, shape: spec.shape });
        sharedMemoryOutputs[spec.name] = { region: r.name, byteSize: n };
      }
      // Outputs in messages must still be asked for by name once some go to shared memory.
      const outputs = outRegions.size && !wanted ? (options.contract?.outputs ?? []).map((s) => s.name) : wanted;
      const call = { ...options, ...(outputs ? { outputs } : {}), sharedMemoryOutputs };
      let res: ProtocolInferResult;
      try {
        res = await this.protocol.infer(model, sent, call, o);
      } catch (e) {
        // A restarted server has forgotten the regions: register them again and try once more.
        if (!/shared memory region|Unable to find/i.test((e as Error).message)) throw e;
        await this.reregister(o);
        res = await this.protocol.infer(model, sent, call, o);
      }
      for (const [name, { region, datatype, shape }] of outRegions) {
        const got = res.sharedMemory[name];
        if (!got) continue;
        const n = fixedBytes(datatype, got.shape) ?? 0;
        if (got.datatype !== datatype || n > region.shm.byteSize) {
          throw new VideoAnalysisError("CONTRACT_MISMATCH", `output ${name} came back as ${got.datatype} [${got.shape}], the contract says ${datatype} [${shape}]`, { model });
        }
        const copy = new Uint8Array(n);
        copy.set(region.shm.view(0, n));
        res.outputs[name] = { name, datatype, shape: got.shape, data: fromRaw(datatype, got.shape, copy, `${model} output ${name}`) } as Tensor;
        delete res.sharedMemory[name];
      }
      ok = true;
      return res;
    } finally {
      for (const r of held) {
        if (ok) this.release(r);
        else this.retire(r);
      }
    }
  }

  /** Unregisters and removes every region. */
  async close(o: CallOptions): Promise<void> {
    this.closed = true;
    for (const r of this.all.splice(0)) {
      await this.protocol.unregisterSystemSharedMemory(r.name, o).catch(() => undefined);
      r.shm.destroy();
    }
    this.free.clear();
  }
}
