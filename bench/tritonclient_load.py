#!/usr/bin/env python3
"""Load generator on NVIDIA's Python tritonclient, for `video-analysis bench client`.

One configuration per run, given as one JSON argument and/or flags (flags win):

    python3 bench/tritonclient_load.py '{"url": "127.0.0.1:8001", "protocol": "grpc", "shm": "none",
        "model": "echo_320", "input": {"name": "INPUT__0", "datatype": "UINT8", "shape": [1, 320, 320, 3]},
        "outputs": [{"name": "OUTPUT__0", "datatype": "UINT8", "shape": [1, 320, 320, 3]}],
        "concurrency": 4, "duration": 3, "warmup": 3}'
    python3 bench/tritonclient_load.py --url 127.0.0.1:8000 --protocol http --shm system --model echo_320 \
        --input INPUT__0:UINT8:1,320,320,3 --output OUTPUT__0:UINT8:1,320,320,3 --concurrency 4 --duration 3

C worker threads, each with its own InferenceServerClient, each doing synchronous infer() in a loop on the
same input (random bytes made once). With shm=system every thread makes its own input and output regions
(tritonclient.utils.shared_memory), copies the frame into the input region before every request (what a
real user does with each new frame), reads the outputs with get_contents_as_numpy, and unregisters and
destroys them at the end. HTTP sends inputs and outputs as binary data (binary_data=True, the default).

Prints {"event": "start"} and {"event": "end"} lines at the ends of the measured window (for a parent that
samples the server's CPU), then one JSON line: requests, seconds, req_per_s, p50_ms, p99_ms, cpu_s (time.process_time() over the
measured window: all threads of this process), cpu_ms_per_req, versions. Every answer's output size is
checked (the first answer's contents too, for an echo); a wrong answer fails the run (exit 1) instead of
counting. Exit 3: tritonclient (or the protocol's module) cannot be imported here.
"""

import argparse
import json
import os
import sys
import threading
import time

ELEMENT_SIZE = {"BOOL": 1, "UINT8": 1, "INT8": 1, "UINT16": 2, "INT16": 2, "FP16": 2, "BF16": 2,
                "UINT32": 4, "INT32": 4, "FP32": 4, "UINT64": 8, "INT64": 8, "FP64": 8}


def tensor_spec(text):
    """NAME:DATATYPE:D0,D1,... -> {"name", "datatype", "shape"}."""
    name, datatype, dims = text.split(":")
    return {"name": name, "datatype": datatype, "shape": [int(d) for d in dims.split(",")]}


def nbytes(spec):
    n = ELEMENT_SIZE[spec["datatype"]]
    for d in spec["shape"]:
        n *= d
    return n


def parse_config(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("config", nargs="?", help="the whole configuration as one JSON object")
    p.add_argument("--url")
    p.add_argument("--protocol", choices=["grpc", "http"])
    p.add_argument("--shm", choices=["none", "system"])
    p.add_argument("--model")
    p.add_argument("--input", type=tensor_spec, help="NAME:DATATYPE:D0,D1,...")
    p.add_argument("--output", type=tensor_spec, action="append", help="NAME:DATATYPE:D0,D1,... (repeatable)")
    p.add_argument("--concurrency", type=int)
    p.add_argument("--duration", type=float, help="seconds of measured load")
    p.add_argument("--requests", type=int, help="measured requests in all (instead of --duration)")
    p.add_argument("--warmup", type=int, help="unmeasured requests per thread first (default 3)")
    p.add_argument("--warmup-seconds", dest="warmup_seconds", type=float,
                   help="and unmeasured requests until this many seconds have passed, per thread (default 0)")
    p.add_argument("--check-echo", dest="check_echo", action="store_true", default=None,
                   help="the first answer's output must equal the input")
    a = p.parse_args(argv)
    cfg = json.loads(a.config) if a.config else {}
    for k in ("url", "protocol", "shm", "model", "input", "concurrency", "duration", "requests", "warmup", "warmup_seconds", "check_echo"):
        v = getattr(a, k)
        if v is not None:
            cfg[k] = v
    if a.output:
        cfg["outputs"] = a.output
    cfg.setdefault("protocol", "grpc")
    cfg.setdefault("shm", "none")
    cfg.setdefault("concurrency", 1)
    cfg.setdefault("warmup", 3)
    cfg.setdefault("check_echo", False)
    if not cfg.get("requests"):
        cfg.setdefault("duration", 3.0)
    for k in ("url", "model", "input", "outputs"):
        if not cfg.get(k):
            p.error(f"{k} is required")
    if cfg["protocol"] not in ("grpc", "http") or cfg["shm"] not in ("none", "system"):
        p.error("protocol must be grpc|http and shm none|system")
    return cfg


def main(argv):
    cfg = parse_config(argv)
    try:
        import numpy as np
        import tritonclient
        from tritonclient.utils import triton_to_np_dtype
        if cfg["protocol"] == "grpc":
            import tritonclient.grpc as tc
        else:
            import tritonclient.http as tc
        if cfg["shm"] == "system":
            import tritonclient.utils.shared_memory as shm
    except Exception as e:  # ImportError, or tritonclient.http's RuntimeError without gevent
        print(json.dumps({"client": "tritonclient", "unsupported": True,
                          "error": f"cannot import tritonclient for {cfg['protocol']}: {type(e).__name__}: {e}"}))
        return 3
    try:
        from importlib.metadata import version
        tc_version = version("tritonclient")
    except Exception:
        tc_version = getattr(tritonclient, "__version__", "unknown")

    http = cfg["protocol"] == "http"
    use_shm = cfg["shm"] == "system"
    spec_in = cfg["input"]
    specs_out = cfg["outputs"]
    out_bytes = [nbytes(s) for s in specs_out]
    in_bytes = nbytes(spec_in)
    C = int(cfg["concurrency"])
    warmup = int(cfg["warmup"])
    warmup_seconds = float(cfg.get("warmup_seconds", 0))
    frame = np.frombuffer(os.urandom(in_bytes), dtype=np.uint8).view(triton_to_np_dtype(spec_in["datatype"])).reshape(spec_in["shape"])

    # Shared by the threads: the measured window and what went wrong.
    ready = threading.Barrier(C + 1)
    finished = threading.Barrier(C + 1)
    go = threading.Event()
    state = {"t_end": None, "left": cfg.get("requests") or None, "error": None}
    left_lock = threading.Lock()
    latencies = [[] for _ in range(C)]
    checked = [0] * C
    warmed = [0] * C

    def take():
        """Whether this thread may send one more measured request."""
        if state["error"] is not None:
            return False
        if state["left"] is not None:
            with left_lock:
                if state["left"] <= 0:
                    return False
                state["left"] -= 1
                return True
        return time.perf_counter() < state["t_end"]

    def worker(i):
        client = None
        regions = []
        registered = []
        try:
            client = tc.InferenceServerClient(url=cfg["url"], concurrency=1) if http else tc.InferenceServerClient(url=cfg["url"])
            inp = tc.InferInput(spec_in["name"], spec_in["shape"], spec_in["datatype"])
            outs = [tc.InferRequestedOutput(s["name"], binary_data=True) if http else tc.InferRequestedOutput(s["name"]) for s in specs_out]
            out_handles = []
            if use_shm:
                base = f"vasdk_bench_{os.getpid()}_{i}"
                in_handle = shm.create_shared_memory_region(f"{base}_in", f"/{base}_in", in_bytes)
                regions.append(in_handle)
                client.register_system_shared_memory(f"{base}_in", f"/{base}_in", in_bytes)
                registered.append(f"{base}_in")
                inp.set_shared_memory(f"{base}_in", in_bytes)
                for k, (s, o) in enumerate(zip(specs_out, outs)):
                    name = f"{base}_out{k}"
                    h = shm.create_shared_memory_region(name, f"/{name}", out_bytes[k])
                    regions.append(h)
                    out_handles.append(h)
                    client.register_system_shared_memory(name, f"/{name}", out_bytes[k])
                    registered.append(name)
                    o.set_shared_memory(name, out_bytes[k])
            else:
                inp.set_data_from_numpy(frame, binary_data=True) if http else inp.set_data_from_numpy(frame)

            def one(first):
                if use_shm:
                    shm.set_shared_memory_region(regions[0], [frame])  # the copy of each new frame
                else:
                    # A new frame is a new set_data_from_numpy (its serialisation is part of the request).
                    inp.set_data_from_numpy(frame, binary_data=True) if http else inp.set_data_from_numpy(frame)
                result = client.infer(cfg["model"], [inp], outputs=outs)
                for k, s in enumerate(specs_out):
                    if use_shm:
                        o = result.get_output(s["name"])
                        datatype, shape = (o["datatype"], o["shape"]) if http else (o.datatype, list(o.shape))
                        arr = shm.get_contents_as_numpy(out_handles[k], triton_to_np_dtype(datatype), shape)
                    else:
                        arr = result.as_numpy(s["name"])
                    if arr is None or arr.nbytes != out_bytes[k]:
                        raise RuntimeError(f"{cfg['model']}: output {s['name']} holds {None if arr is None else arr.nbytes} bytes, expected {out_bytes[k]}")
                    if first and cfg["check_echo"] and not np.array_equal(arr.reshape(-1).view(np.uint8), frame.reshape(-1).view(np.uint8)):
                        raise RuntimeError(f"{cfg['model']}: output {s['name']} is not the input echoed")
                checked[i] += 1

            until = time.perf_counter() + warmup_seconds
            w = 0
            while w < max(1, warmup) or time.perf_counter() < until:
                one(w == 0)
                w += 1
            warmed[i] = w
            ready.wait()
            go.wait()
            lat = latencies[i]
            while take():
                t = time.perf_counter()
                one(False)
                lat.append(time.perf_counter() - t)
            finished.wait()  # the window ends here; the clean-up below is not measured
        except threading.BrokenBarrierError:
            pass
        except Exception as e:  # noqa: BLE001 - reported, fails the run
            if state["error"] is None:
                state["error"] = f"{type(e).__name__}: {e}"
            ready.abort()
            finished.abort()
        finally:
            for name in registered:
                try:
                    client.unregister_system_shared_memory(name)
                except Exception:
                    pass
            for h in regions:
                try:
                    shm.destroy_shared_memory_region(h)
                except Exception:
                    pass
            if client is not None:
                try:
                    client.close()
                except Exception:
                    pass

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(C)]
    for t in threads:
        t.start()
    try:
        ready.wait()
    except threading.BrokenBarrierError:
        pass
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    if cfg.get("duration"):
        state["t_end"] = t0 + float(cfg["duration"])
    print(json.dumps({"event": "start"}), flush=True)
    go.set()
    try:
        finished.wait()
    except threading.BrokenBarrierError:
        pass
    seconds = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    print(json.dumps({"event": "end"}), flush=True)
    for t in threads:
        t.join()
    base = {"client": "tritonclient", "protocol": cfg["protocol"], "shm": cfg["shm"], "model": cfg["model"], "concurrency": C,
            "python": sys.version.split()[0], "tritonclient": tc_version}
    if state["error"] is not None:
        print(json.dumps({**base, "error": state["error"]}), flush=True)
        return 1
    lat = np.sort(np.concatenate([np.asarray(l, dtype=np.float64) for l in latencies])) * 1e3
    n = int(lat.size)
    if n == 0:
        print(json.dumps({**base, "error": "no request finished in the measured window"}), flush=True)
        return 1
    print(json.dumps({
        **base,
        "requests": n,
        "warmup_requests": sum(warmed),
        "seconds": round(seconds, 4),
        "req_per_s": round(n / seconds, 2),
        "p50_ms": round(float(np.percentile(lat, 50)), 3),
        "p99_ms": round(float(np.percentile(lat, 99)), 3),
        "cpu_s": round(cpu, 4),
        "cpu_ms_per_req": round(cpu * 1e3 / n, 4),
        "output_bytes": out_bytes,
        "outputs_checked": sum(checked),
        "output_check": "ok",
    }), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
