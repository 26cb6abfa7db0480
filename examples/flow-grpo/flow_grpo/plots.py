"""Reward and accuracy curves (PNG) from a run's metrics.json (matplotlib).

    python3 -m flow_grpo.plots DIR        (reads DIR/metrics.json, writes DIR/*.png)
"""
from __future__ import annotations

import json
import os
import sys


def _save(fig, ax, title, ylim, path):
    ax.set_xlabel("training step")
    ax.set_ylim(*ylim)
    ax.legend(fontsize=7)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)


def main(argv=None):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = (argv or sys.argv[1:])[0]
    with open(os.path.join(out, "metrics.json")) as f:
        m = json.load(f)
    h, ev = m["history"], m["evals"]
    steps = [r["step"] for r in h]
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=120)
    ax.plot(steps, [r["reward_mean"] for r in h], label="reward (dense, training samples)")
    ax.plot(steps, [r["partial_credit"] for r in h], label="objects right (fraction)")
    ax.plot(steps, [r["accuracy"] for r in h], label="all three right")
    resumed = m.get("resumed_at")
    if resumed:
        ax.axvline(resumed, color="gray", linestyle=":", label=f"resumed from checkpoint (step {resumed})")
    _save(fig, ax, "Flow-GRPO rollouts (SDE samples of training prompts)", (0, 1), os.path.join(out, "reward.png"))
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=120)
    es = [e["step"] for e in ev]
    ax.plot(es, [e["heldout_accuracy"] for e in ev], "o-", label="held-out three-object accuracy")
    ax.plot(es, [e["single_accuracy"] for e in ev], "s-", label="single-object accuracy")
    _save(fig, ax, "Evaluation through the worker (ODE, fixed seeds)", (0, 1.02), os.path.join(out, "accuracy.png"))


if __name__ == "__main__":
    main()
