"""Everything in one reproducible command (run from python/ on the GPU machine):

    python3 -m omni_ref.build --work /tmp/shapes-work

1. train the model (omni_ref.train), 2. train + export the scene classifier (omni_ref.classifier)
into rewards/, 3. export the model folder models/shapes-dit/ (omni_ref.export: ONNX + safetensors,
checked against PyTorch with onnxruntime), 4. evaluate and write the sample grid
(omni_ref.evaluate), 5. write the golden fixtures test/fixtures/ (omni_ref.fixtures).
--quick: a tiny smoke run of every stage.
"""
from __future__ import annotations

import argparse
import os
import shutil
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--model-out", default=os.path.join(ROOT, "models", "shapes-dit"))
    ap.add_argument("--rewards-out", default=os.path.join(ROOT, "rewards"))
    ap.add_argument("--fixtures-out", default=os.path.join(ROOT, "test", "fixtures"))
    args, rest = ap.parse_known_args(argv)
    from . import classifier, evaluate, export, fixtures, train
    q = args.quick
    t0 = time.time()
    ck = os.path.join(args.work, "ckpt")
    train.main(["--out", ck] + (["--steps", "300", "--data", "8192"] if q else []) + rest)
    print(f"[build] train done {time.time() - t0:.0f}s", flush=True)
    cl = os.path.join(args.work, "classifier")
    classifier.main(["--out", cl] + (["--steps", "200", "--data", "8192"] if q else []))
    os.makedirs(args.rewards_out, exist_ok=True)
    for f in ("scene-classifier.onnx", "scene-classifier.json"):
        shutil.copy(os.path.join(cl, f), os.path.join(args.rewards_out, f))
    print(f"[build] classifier done {time.time() - t0:.0f}s", flush=True)
    export.main(["--ckpt", os.path.join(ck, "shapes-dit.pt"), "--out", args.model_out])
    print(f"[build] export done {time.time() - t0:.0f}s", flush=True)
    ev = os.path.join(args.work, "eval")
    evaluate.main(["--model", args.model_out, "--classifier", os.path.join(cl, "scene-classifier.pt"),
                   "--out", ev] + (["--n", "32"] if q else []))
    shutil.copy(os.path.join(ev, "samples.png"), os.path.join(args.model_out, "samples.png"))
    print(f"[build] eval done {time.time() - t0:.0f}s", flush=True)
    fixtures.main(["--model", args.model_out, "--rewards", args.rewards_out, "--out", args.fixtures_out])
    print(f"[build] fixtures done {time.time() - t0:.0f}s", flush=True)


if __name__ == "__main__":
    main()
