"""Flow-GRPO for the embedded model (models/shapes-dit) with omni-worker as the rollout engine.

Modules that need no PyTorch: prompts, scenes3, reward, advantages, bookkeeping, phases.
Modules that need PyTorch: classifier3, policy, train, baseline (run on the GPU machine).
"""
