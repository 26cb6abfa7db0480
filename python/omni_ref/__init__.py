"""omni_ref: the PyTorch reference of omni-worker's embedded model (shapes-dit).

Modules: scenes (synthetic data), tokenizer, model (text encoder + DiT), train, classifier,
export (ONNX + safetensors), samplers (ODE / SDE / CPS / window, docs/rl-math.md), fixtures (golden
tensors for the TypeScript tests). Everything runs from python/ as `python3 -m omni_ref.<module>`.
"""
