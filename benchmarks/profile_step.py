"""Where a training step of the SET tutorial recipe goes: batch gather, zero_grad, forward, loss, backward, step.

The recipe of ``bench_tutorial.py`` (Fashion-MNIST, 784-1000-1000-1000-10, epsilon 13, batch 40, dropout 0.2,
SGD lr 0.05, one thread as ``evosparse train`` chooses for it), built as ``evosparse train`` builds it, stepped
by hand with a timer around each phase. Rounds alternate the model's own forward (hidden blocks fused into one
op each, ``SparseLinear.forward_relu_dropout``) with ``model.net`` (the same modules one by one, as before the
fusion) and with ``backprop`` (evosparse.nn.backprop.CrossEntropyPass: forward, loss and backward without autograd,
what the trainer runs for this recipe), so that all three see the same machine; the three give bit-identical numbers
(tests/nn/test_mlp.py, tests/nn/test_backprop.py).

    /work/bin/bench-slot python benchmarks/profile_step.py --data-dir /work/shared/data --steps 500
    /work/bin/bench-slot python benchmarks/profile_step.py --data-dir /work/shared/data --steps 500 --fused-step
"""

from __future__ import annotations

import argparse
import os
import time

import torch
import torch.nn.functional as F

from evosparse.nn.backprop import CrossEntropyPass
from evosparse.train.config import TrainConfig
from evosparse.train.run import build_trainer, load_tensors, set_threads

PHASES = ("gather", "zero_grad", "forward", "loss", "backward", "step")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=os.environ.get("EVOSPARSE_TEST_DATA", "../shared/data"))
    parser.add_argument("--steps", type=int, default=500, help="timed steps per round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--fused-step", action="store_true", help="FusedSGD (the SGD step inside the backward)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    config = TrainConfig.from_dict(
        {
            "data": {"dataset": "fashion_mnist", "data_dir": args.data_dir, "download": False},
            "model": {"hidden": [1000, 1000, 1000], "epsilon": 13.0, "dropout": 0.2},
            "optimizer": {"batch_size": 40, "lr": 0.05, "fused_step": args.fused_step},
            "run": {"epochs": 1},
        }
    )
    tensors = load_tensors(config)
    trainer = build_trainer(config, tensors)
    set_threads(args.threads)
    model, optimizer = trainer.model, trainer.optimizer
    model.train()
    order = torch.randperm(tensors.x_train.shape[0], generator=trainer.generator)

    def run(steps: int, blocks: str) -> dict[str, float]:
        forward = model if blocks == "fused" else model.net
        spent = dict.fromkeys(PHASES, 0.0)
        clock = time.perf_counter
        for step in range(steps):
            begin = (step * 40) % (order.shape[0] - 40)
            t0 = clock()
            index = order[begin : begin + 40]
            x, y = tensors.x_train[index], tensors.y_train[index]
            t1 = clock()
            optimizer.zero_grad(set_to_none=True)
            t2 = clock()
            # CrossEntropyPass covers the plain recipe; with --fused-step (FusedSGD attached) it returns None and
            # the round runs the modules through autograd, as the trainer does
            manual = CrossEntropyPass.run(model, x, y) if blocks == "backprop" else None
            if manual is not None:
                logits, loss = manual.logits, manual.loss
            else:
                logits = forward(x)
            t3 = clock()
            int((logits.argmax(dim=1) == y).sum())
            if manual is None:
                loss = F.cross_entropy(logits, y)
            loss.item()
            t4 = clock()
            if manual is not None:
                manual.backward()
            elif trainer.fusion is not None:
                trainer.fusion.backward(loss)
            else:
                loss.backward()
            t5 = clock()
            optimizer.step()
            t6 = clock()
            for phase, seconds in zip(PHASES, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t6 - t5)):
                spent[phase] += seconds
        return spent

    print(f"# load average at start: {' '.join(open('/proc/loadavg').read().split()[:3])}; threads {args.threads}")
    print(f"# fused step: {args.fused_step}; {args.steps} steps per round; microseconds per step")
    run(30, "fused")  # warm-up (kernel caches, allocator)
    run(30, "modules")
    run(30, "backprop")
    print(f"{'blocks':<8} {'round':>5} {'total':>7} " + " ".join(f"{p:>9}" for p in PHASES))
    for round_ in range(args.rounds):
        for blocks in ("modules", "fused", "backprop"):
            spent = run(args.steps, blocks)
            per_step = {p: 1e6 * s / args.steps for p, s in spent.items()}
            cells = " ".join(f"{per_step[p]:>9.0f}" for p in PHASES)
            print(f"{blocks:<8} {round_ + 1:>5} {sum(per_step.values()):>7.0f} {cells}", flush=True)
    print(f"# load average at end: {' '.join(open('/proc/loadavg').read().split()[:3])}")


if __name__ == "__main__":
    main()
