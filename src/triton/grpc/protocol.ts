import type { ModelMetadata, TensorSpec } from "../../backend/backend.js";
import { isDataType, type DataType } from "../../tensor.js";
import { inferenceService, SERVICE } from "../proto.js";
import { TransportError, type CallOptions, type ConnectionOptions, type InferInput, type Protocol, type ProtocolInferOptions, type ProtocolInferResult, type RepositoryModel, type ServerMetadata, type SharedMemoryRegionStatus } from "../protocol.js";
import { inferRequest, inferResult } from "../wire.js";
import { GrpcChannel } from "./channel.js";
import { decodeModelInferResponse, decodeModelStreamInferResponse, encodeModelInferRequest, firstRawOffset, frame } from "./codec.js";
import { Lanes } from "./lanes.js";

const toSpec = (t: { name: string; datatype: string; shape?: string[] }): TensorSpec => ({
  name: t.name,
  datatype: (isDataType(t.datatype) ? t.datatype : "BYTES") as DataType,
  shape: (t.shape ?? []).map(Number),
});

const INFER = `/${SERVICE}/ModelInfer`;

/** Triton's gRPC protocol (inference.GRPCInferenceService) on a GrpcChannel. */
export class GrpcProtocol implements Protocol {
  readonly name = "grpc" as const;
  readonly endpoint: string;
  readonly channel: GrpcChannel;
  private readonly lanes: Lanes;

  constructor(options: ConnectionOptions) {
    this.endpoint = options.urls.join(",");
    this.channel = new GrpcChannel(options);
    this.lanes = new Lanes(this.channel);
  }

  /** A call other than inference, through the .proto's own serializers. */
  private async call<T>(method: string, request: object, o: CallOptions): Promise<T> {
    const m = inferenceService()[method]!;
    const answer = await this.channel.unary(m.path, frame(m.requestSerialize(request)), o);
    return m.responseDeserialize(answer) as T;
  }

  async serverLive(o: CallOptions): Promise<boolean> {
    return (await this.call<{ live?: boolean }>("ServerLive", {}, o)).live ?? false;
  }

  async serverReady(o: CallOptions): Promise<boolean> {
    return (await this.call<{ ready?: boolean }>("ServerReady", {}, o)).ready ?? false;
  }

  async modelReady(model: string, version: string, o: CallOptions): Promise<boolean> {
    return (await this.call<{ ready?: boolean }>("ModelReady", { name: model, version }, o)).ready ?? false;
  }

  async serverMetadata(o: CallOptions): Promise<ServerMetadata> {
    const r = await this.call<{ name?: string; version?: string; extensions?: string[] }>("ServerMetadata", {}, o);
    return { name: r.name ?? "", version: r.version ?? "", extensions: r.extensions ?? [] };
  }

  async modelMetadata(model: string, version: string, o: CallOptions): Promise<ModelMetadata> {
    const r = await this.call<any>("ModelMetadata", { name: model, version }, o);
    return {
      name: r.name ?? model,
      versions: r.versions ?? [],
      platform: r.platform ?? "",
      inputs: (r.inputs ?? []).map(toSpec),
      outputs: (r.outputs ?? []).map(toSpec),
    };
  }

  async modelConfig(model: string, version: string, o: CallOptions): Promise<Record<string, any>> {
    return (await this.call<{ config?: Record<string, any> }>("ModelConfig", { name: model, version }, o)).config ?? {};
  }

  async modelStatistics(model: string, version: string, o: CallOptions): Promise<Record<string, any>[]> {
    return (await this.call<{ model_stats?: Record<string, any>[] }>("ModelStatistics", { name: model, version }, o)).model_stats ?? [];
  }

  async repositoryIndex(repository: string, ready: boolean, o: CallOptions): Promise<RepositoryModel[]> {
    const r = await this.call<{ models?: Partial<RepositoryModel>[] }>("RepositoryIndex", { repository_name: repository, ready }, o);
    return (r.models ?? []).map((m) => ({ name: m.name ?? "", version: m.version ?? "", state: m.state ?? "", reason: m.reason ?? "" }));
  }

  async loadModel(model: string, options: { config?: string; repository?: string }, o: CallOptions): Promise<void> {
    const parameters = options.config ? { config: { string_param: options.config } } : {};
    await this.call("RepositoryModelLoad", { repository_name: options.repository ?? "", model_name: model, parameters }, o);
  }

  async unloadModel(model: string, options: { unloadDependents?: boolean; repository?: string }, o: CallOptions): Promise<void> {
    const parameters = options.unloadDependents ? { unload_dependents: { bool_param: true } } : {};
    await this.call("RepositoryModelUnload", { repository_name: options.repository ?? "", model_name: model, parameters }, o);
  }

  async registerSystemSharedMemory(name: string, key: string, byteSize: number, offset: number, o: CallOptions): Promise<void> {
    await this.call("SystemSharedMemoryRegister", { name, key, offset: String(offset), byte_size: String(byteSize) }, o);
  }

  async unregisterSystemSharedMemory(name: string, o: CallOptions): Promise<void> {
    await this.call("SystemSharedMemoryUnregister", { name }, o);
  }

  async systemSharedMemoryStatus(name: string, o: CallOptions): Promise<SharedMemoryRegionStatus[]> {
    const r = await this.call<{ regions?: Record<string, { name: string; key: string; offset?: string; byte_size?: string }> }>("SystemSharedMemoryStatus", { name }, o);
    return Object.values(r.regions ?? {}).map((x) => ({ name: x.name, key: x.key, offset: Number(x.offset ?? 0), byteSize: Number(x.byte_size ?? 0) }));
  }

  /**
   * ModelInfer, carried on an open stream (lanes.ts), the same request and answer. A request the server
   * refuses is asked again as a unary call: a stream's error is only a text, the unary call's has Triton's
   * gRPC status (a model that failed while running therefore runs twice; failures are rare, and without
   * the status an outage could not be told from a refusal). Requests of a sequence (stateful models) are
   * never repeated, so they go as unary calls.
   */
  async infer(model: string, inputs: readonly InferInput[], options: ProtocolInferOptions, o: CallOptions): Promise<ProtocolInferResult> {
    const parts = encodeModelInferRequest(inferRequest(model, inputs, options));
    const t0 = performance.now();
    let streamError: string | undefined;
    if (options.parameters?.sequence_id === undefined) {
      const msg = decodeModelStreamInferResponse(await this.lanes.send(parts, o));
      if (msg.error === undefined && msg.response) return inferResult(model, msg.response, options.sharedMemoryOutputs);
      streamError = msg.error;
    }
    let answer: Buffer;
    try {
      // Within what is left of the call's deadline.
      const left = o.deadlineMs > 0 ? Math.max(1, o.deadlineMs - (performance.now() - t0)) : 0;
      answer = await this.channel.unary(INFER, parts, { ...o, deadlineMs: left, align: firstRawOffset });
    } catch (e) {
      // Triton 2.51 answers some refusals (a wrong shape) on the unary call with a status and no text; the
      // stream said what was wrong.
      if (e instanceof TransportError && !e.details && streamError) throw new TransportError(e.code, streamError, e.status);
      throw e;
    }
    return inferResult(model, decodeModelInferResponse(answer), options.sharedMemoryOutputs);
  }

  async close(): Promise<void> {
    this.lanes.close();
    this.channel.close();
  }
}
