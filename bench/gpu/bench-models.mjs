// `video-analysis bench models` without the rest of the CLI: the CLI imports every command, and some of
// them load onnxruntime-node and sharp (native, 300+ MB with all platforms), which a GPU box that only
// benchmarks the server need not carry. Same code, same flags: node bench/gpu/bench-models.mjs --url ...
const { modelsBench } = await import("../../dist/bench/models.js");
process.exitCode = await modelsBench.run(process.argv.slice(2));
