#!/bin/bash
# Hyperparameter probe on the GPU machine without Node: the trainer with its pure-PyTorch engine
# (flow_grpo/torch_engine.py), four settings side by side on one GPU, each a tarball in $OUT.
cd "$(dirname "$0")/.."
export PYTHONPATH=$PWD/../../python:$PWD/../../clients/python:$PWD
run() { name=$1; shift; python3 -m flow_grpo.train --engine torch --out /tmp/probe/$name --steps 100000 --time-budget ${BUDGET:-200} --final --prompts-per-step 32 --group 16 --eval-every 25 "$@" > /tmp/probe/$name.log 2>&1 & }
mkdir -p /tmp/probe
run mixed --reward mixed --lr 1e-4
run mixed-kl --reward mixed --lr 1e-4 --beta 0.04
run dense-kl --reward dense --lr 1e-4 --beta 0.04
run mixed-late --reward mixed --lr 1e-4 --window-range 2 8
wait
for d in /tmp/probe/*/; do n=$(basename $d); rm -f $d/checkpoint.pt; cp /tmp/probe/$n.log $d/; tar czf $OUT/$n.tgz -C $d .; echo "== $n"; grep '^eval' $d/$n.log | cut -c1-170; done
