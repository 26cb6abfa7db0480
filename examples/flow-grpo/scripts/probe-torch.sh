#!/bin/bash
# learnability probe on the GPU: pure-PyTorch engine, 4 configs in parallel
cd examples/flow-grpo
export PYTHONPATH=$PWD/../../python:$PWD/../../clients/python:$PWD
nvidia-smi --query-gpu=name,memory.used --format=csv
python3 -c "import matplotlib" 2>&1 | tail -1
run() { name=$1; shift; python3 -m flow_grpo.train --engine torch --out $OUT/$name --steps 400 --time-budget 200 --prompts-per-step 32 --group 16 --eval-every 50 --heldout 64 --eval-seeds 2 "$@" > $OUT/$name.log 2>&1 & }
run e --lr 1e-4 --prompts-per-step 16
run f --lr 1.5e-4 --prompts-per-step 16 --beta 0.01
run g --lr 1.5e-4
wait
for f in $OUT/*.log; do echo "== $f"; grep '^eval' $f | cut -c1-200; tail -2 $f | cut -c1-400; done
