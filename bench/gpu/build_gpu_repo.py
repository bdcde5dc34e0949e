#!/usr/bin/env python3
"""Builds a GPU model repository for tritonserver from the committed triton/models.

  python3 bench/gpu/build_gpu_repo.py --out /tmp/gpurepo [--io gpu|cpu] [--precision fp32|fp16] [--models midas_256,clip_text]
                                      [--instance-kind GPU|CPU]

- Ensembles: copied byte for byte.
- preprocess_*: the generated math in PyTorch (torch_preprocess.py; the generated model.py beside it as
  numpy_preprocess.py gives the constants), because the wheel's python-backend stub needs numpy < 2 and
  the GPU machine's torch has numpy 2. --io gpu (default): on one KIND_GPU instance, output in GPU memory;
  --io cpu: on the CPU, with the committed instance_group (for when GPU tensors cannot pass between the
  python-backend processes).
- <model>_onnx: `platform: "onnxruntime_onnx"` becomes `backend: "python"` with one KIND_GPU instance,
  and 1/model.py is torch_model.py (the same architecture at full size, random weights, PyTorch on the
  GPU). The tensor names, types and shapes stay those of the committed config. The wheel's tritonserver
  has no onnxruntime backend, hence python. A track C/D `<model>_end2end` (from `video-analysis triton-repo
  --tracks`, passed as --source) is the same, with NMS on the GPU and its dynamic batching kept.
- yolo_preprocess_dali_* (backend "dali", from the same --tracks output): torch_dali.py, nvJPEG and DALI's
  letterbox in PyTorch on the GPU; the tier's dynamic_batching and queue policy are kept as generated.

Standard library only: runs anywhere Python 3.8+ does.
"""
import argparse
import os
import re
import shutil

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
INSTANCE = "instance_group [ { count: 1 kind: KIND_%s } ]"


def params(d):
    return "".join(f'parameters {{ key: "{k}" value: {{ string_value: "{v}" }} }}\n' for k, v in d.items())


def one_instance(config, kind):
    """Replaces the config's instance_group (or adds one) with one instance of that kind."""
    group = INSTANCE % kind
    if re.search(r"^instance_group\s*\[", config, re.M):
        return re.sub(r"^instance_group\s*\[.*?^\]\n?", group + "\n", config, flags=re.M | re.S)
    return config.rstrip() + "\n" + group + "\n"


def steps(config):
    return re.findall(r'model_name:\s*"([^"]+)"', config)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--source", default=os.path.join(REPO, "triton", "models"))
    ap.add_argument("--io", choices=["gpu", "cpu"], default="gpu")
    ap.add_argument("--precision", choices=["fp32", "fp16"], default="fp32")
    ap.add_argument("--models", help="ensembles to include, with their parts (default: all)")
    # CPU: for checking the repository and the models' shapes on a machine without a GPU (slowly).
    ap.add_argument("--instance-kind", choices=["GPU", "CPU"], default="GPU")
    a = ap.parse_args()
    if a.instance_kind == "CPU" and a.io == "gpu":
        ap.error("--instance-kind CPU needs --io cpu (the torch preprocess runs on a GPU)")

    names = sorted(n for n in os.listdir(a.source) if os.path.isfile(os.path.join(a.source, n, "config.pbtxt")))
    if a.models:
        keep = set()
        for m in a.models.split(","):
            cfg = open(os.path.join(a.source, m, "config.pbtxt")).read()
            keep |= {m, *steps(cfg)}
        names = [n for n in names if n in keep]
    if os.path.exists(a.out):
        shutil.rmtree(a.out)
    for name in names:
        src, dst = os.path.join(a.source, name), os.path.join(a.out, name)
        config = open(os.path.join(src, "config.pbtxt")).read()
        if re.search(r'^platform:\s*"onnxruntime_onnx"', config, re.M):
            config = re.sub(r'^platform:\s*"onnxruntime_onnx"', 'backend: "python"', config, flags=re.M)
            p = {"PRECISION": a.precision, "GPU_OUTPUT": "yes" if a.io == "gpu" else "no"}
            if a.io == "gpu":
                p["FORCE_CPU_ONLY_INPUT_TENSORS"] = "no"  # take the preprocess output where it is, on the GPU
            os.makedirs(os.path.join(dst, "1"))
            with open(os.path.join(dst, "config.pbtxt"), "w") as f:
                f.write(f"# Rewritten by bench/gpu/build_gpu_repo.py: PyTorch on the GPU (torch_model.py), io={a.io}.\n")
                f.write(one_instance(config, a.instance_kind) + params(p))
            shutil.copy(os.path.join(HERE, "torch_model.py"), os.path.join(dst, "1", "model.py"))
        elif re.search(r'^backend:\s*"dali"', config, re.M):
            os.makedirs(os.path.join(dst, "1"))
            with open(os.path.join(dst, "config.pbtxt"), "w") as f:
                f.write("# Rewritten by bench/gpu/build_gpu_repo.py: nvJPEG + DALI's letterbox in PyTorch (torch_dali.py).\n")
                f.write(re.sub(r'^backend:\s*"dali"', 'backend: "python"', config, flags=re.M))
            shutil.copy(os.path.join(HERE, "torch_dali.py"), os.path.join(dst, "1", "model.py"))
        elif name.startswith("preprocess_"):
            os.makedirs(os.path.join(dst, "1"))
            with open(os.path.join(dst, "config.pbtxt"), "w") as f:
                f.write(f"# Rewritten by bench/gpu/build_gpu_repo.py: the generated math in PyTorch (torch_preprocess.py), io={a.io}.\n")
                f.write(one_instance(config, "GPU") if a.io == "gpu" else config)
            shutil.copy(os.path.join(src, "1", "model.py"), os.path.join(dst, "1", "numpy_preprocess.py"))
            shutil.copy(os.path.join(HERE, "torch_preprocess.py"), os.path.join(dst, "1", "model.py"))
        else:
            shutil.copytree(src, dst)
    print(f"build_gpu_repo: {len(names)} models in {a.out} (io={a.io}, precision={a.precision})")


if __name__ == "__main__":
    main()
