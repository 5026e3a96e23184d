"""RL agents: training speed against Stable-Baselines3, and a returns runner over algorithms x strategies x
densities x seeds x environments.

    python benchmarks/bench_rl.py speed [--steps 2000] [--threads 2,1] [--tasks sac,td3,dqn] [--densities 0.5,0.1]
        [--busy]
    python benchmarks/bench_rl.py returns --out-dir DIR --envs CartPole-v1 --algos dqn --strategies dense,set
        [--densities 0.5,0.1] [--seeds 0,1,2] [--steps 50000] [--eval-every 5000] [--sb3] [--set FIELD=VALUE ...]

1. **speed**: environment steps per second of training, gradient updates included, measured over ``--steps``
   steps after ``learning_starts`` (the warm-up of random actions is not timed), for SAC on Pendulum-v1, TD3
   on HalfCheetah-v5 and DQN on CartPole-v1: ours dense, ours sparse (SET) at each density, and SB3 with the
   same hyperparameters and network sizes (our config's defaults: 256-256 for SAC / TD3, 64-64 for DQN).
   Both run in this process, one after the other, at each thread count; the table gives ours / SB3 and, for
   the sparse agents, sparse / our dense. ``--busy`` starts one competing busy process (``yes > /dev/null``)
   for the whole measurement and stops it at the end: the "busy machine" variant.
2. **returns**: every combination trained through :func:`evosparse.rl.run.train_rl` into
   ``DIR/runs/<env>-<algo>-<strategy>-<density>-s<seed>`` (finished runs are reused, interrupted ones resumed:
   the runner can be stopped and started again), then ``DIR/results.csv`` (one row per run) and
   ``DIR/results.md`` (one row per setting: final return mean +- sd over seeds and per seed, the mean of each
   seed's last three evaluations, steps to reach the dense agent's final return, weights, training FLOPs and
   the wall-clock steps per second of the whole run, evaluations included). ``--sb3`` adds SB3's agent with the
   same hyperparameters, evaluated the same way (same episodes, same seeds), as the reference. SB3's runs
   resume too, from their last checkpoint, but not exactly: SB3 cannot save an environment in the middle of
   an episode, so a resumed SB3 run starts a new episode there.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from evosparse.io.serialize import load_arrays, load_json, save_arrays, save_json
from evosparse.io.torch_files import load_torch, save_torch
from evosparse.rl import ALGORITHMS
from evosparse.rl.evaluation import evaluate_policy
from evosparse.rl.run import RunConfig, make_run_env, set_threads, train_rl

SPEED_TASKS = {"sac": "Pendulum-v1", "td3": "HalfCheetah-v5", "dqn": "CartPole-v1"}
WARMUP = 1000  # learning_starts of the speed runs: random actions, not timed


# ---- SB3 with our hyperparameters -----------------------------------------------------------------------------
def sb3_agent(algo: str, env, config, *, seed: int):
    """SB3's agent with the hyperparameters and network sizes of our ``config`` (an AlgoConfig)."""
    import stable_baselines3 as sb3
    from stable_baselines3.common.noise import NormalActionNoise

    common = dict(
        learning_rate=config.learning_rate, buffer_size=config.buffer_size, learning_starts=config.learning_starts,
        batch_size=config.batch_size, tau=config.tau, gamma=config.gamma, train_freq=config.train_freq,
        gradient_steps=config.gradient_steps, seed=seed, device="cpu", verbose=0,
    )  # fmt: skip
    if algo == "dqn":
        return sb3.DQN(
            "MlpPolicy", env, **common, target_update_interval=config.target_update_interval,
            exploration_fraction=config.exploration_fraction, exploration_initial_eps=config.exploration_initial_eps,
            exploration_final_eps=config.exploration_final_eps, max_grad_norm=config.max_grad_norm or 1e9,
            policy_kwargs={"net_arch": list(config.critic_hidden)},
        )  # fmt: skip
    net_arch = {"pi": list(config.actor_hidden), "qf": list(config.critic_hidden)}
    if algo == "td3":
        n_actions = env.action_space.shape[0]
        # SB3 adds the noise to the action scaled to [-1, 1], as our action_noise is defined.
        noise = NormalActionNoise(np.zeros(n_actions), config.action_noise * np.ones(n_actions))
        return sb3.TD3(
            "MlpPolicy", env, **common, policy_delay=config.policy_delay,
            target_policy_noise=config.target_policy_noise, target_noise_clip=config.target_noise_clip,
            action_noise=noise, policy_kwargs={"net_arch": net_arch},
        )  # fmt: skip
    return sb3.SAC(
        "MlpPolicy", env, **common, ent_coef="auto" if config.autotune else config.alpha_init,
        target_update_interval=config.target_update_interval, policy_kwargs={"net_arch": net_arch},
    )  # fmt: skip


def _sb3_version() -> str:
    import stable_baselines3

    return stable_baselines3.__version__


def _sb3_timer(start_step: int):
    from stable_baselines3.common.callbacks import BaseCallback

    class Timer(BaseCallback):
        def _on_step(self) -> bool:
            if self.num_timesteps == start_step:
                self.began = time.perf_counter()
            return True

    return Timer()


def _our_timer(start_step: int):
    from evosparse.rl.callbacks import BaseCallback

    class Timer(BaseCallback):
        def _on_step(self) -> bool:
            if self.num_timesteps == start_step:
                self.began = time.perf_counter()
            return True

    return Timer()


def measure_speed(algo: str, env_id: str, *, steps: int, strategy: str, density: float, sb3: bool) -> float:
    """Steps per second over ``steps`` steps after the warm-up (updates included)."""
    import gymnasium as gym

    config_class = ALGORITHMS[algo].config_class
    changes = {"learning_starts": WARMUP, "buffer_size": WARMUP + steps + 10}
    if strategy != "dense":
        changes.update(strategy=strategy, actor_density=density, critic_density=density)
    config = config_class().replace(**changes)
    env = gym.make(env_id)
    if sb3:
        agent, timer = sb3_agent(algo, env, config, seed=0), _sb3_timer(WARMUP + 1)
    else:
        agent, timer = ALGORITHMS[algo].cls(env, config, seed=0), _our_timer(WARMUP + 1)
    agent.learn(WARMUP + steps, callback=timer)
    elapsed = time.perf_counter() - timer.began
    env.close()
    return (steps - 1) / elapsed


def command_speed(args: argparse.Namespace) -> None:
    import os
    import subprocess

    busy = subprocess.Popen(["yes"], stdout=subprocess.DEVNULL) if args.busy else None
    try:
        print(
            f"training steps/s after {WARMUP} warm-up steps, {args.steps} timed steps; torch {torch.__version__}; "
            f"{'one busy process' if busy else 'no busy process'}; load {os.getloadavg()[0]:.2f}"
        )
        _speed_table(args)
    finally:
        if busy is not None:
            busy.kill()
            busy.wait()
    print(f"load at the end {os.getloadavg()[0]:.2f}")


def _speed_table(args: argparse.Namespace) -> None:
    for threads in args.threads:
        set_threads(threads)
        for algo in args.tasks:
            env_id = SPEED_TASKS[algo]
            sb3_rate = measure_speed(algo, env_id, steps=args.steps, strategy="dense", density=1.0, sb3=True)
            rows = [(f"SB3 {_sb3_version()} dense", sb3_rate)]
            rows.append(
                ("ours dense", measure_speed(algo, env_id, steps=args.steps, strategy="dense", density=1.0, sb3=False))
            )
            for density in args.densities:
                rate = measure_speed(algo, env_id, steps=args.steps, strategy="set", density=density, sb3=False)
                rows.append((f"ours SET {density:g}", rate))
            dense_rate = rows[1][1]
            for name, rate in rows:
                ratio = f"{rate / sb3_rate:5.2f}x SB3"
                if name.startswith("ours SET"):
                    ratio += f"  {rate / dense_rate:5.2f}x our dense"
                print(f"{threads} thr  {algo.upper():4} {env_id:15} {name:16} {rate:8.1f} steps/s  {ratio}")
            sys.stdout.flush()


# ---- returns ---------------------------------------------------------------------------------------------------
def _run_name(env: str, algo: str, strategy: str, density: float, seed: int) -> str:
    tag = "1" if strategy in ("dense", "sb3") else f"{density:g}"
    return f"{env.split('/')[-1]}-{algo}-{strategy}-{tag}-s{seed}"


def _setting_values(pairs: list[str]) -> dict:
    values = {}
    for pair in pairs:
        key, _, text = pair.partition("=")
        try:
            values[key] = json.loads(text)
        except json.JSONDecodeError:
            values[key] = text
    return values


_SB3_STATE, _SB3_BUFFER, _SB3_PROGRESS = "sb3_state.pt", "sb3_buffer.npz", "sb3_progress.json"


def _save_sb3(model, folder: Path, seconds: float) -> None:
    """SB3's run state without pickle: networks and optimizers (torch, loaded with weights_only), the filled part
    of the replay buffer and numpy's global generator (npz), counters and Python's generator (JSON, written last:
    a checkpoint without it is ignored)."""
    optimizers = {"actor": model.actor.optimizer.state_dict(), "critic": model.critic.optimizer.state_dict()}
    extra = {}
    if getattr(model, "ent_coef_optimizer", None) is not None:  # SAC with automatic entropy tuning
        optimizers["ent_coef"] = model.ent_coef_optimizer.state_dict()
        extra["log_ent_coef"] = model.log_ent_coef.detach().clone()
    state = {"policy": model.policy.state_dict(), "optimizers": optimizers, "torch_rng": torch.get_rng_state(), **extra}
    save_torch(folder / _SB3_STATE, state, format="bench-rl-sb3-state")
    buffer = model.replay_buffer
    filled = buffer.buffer_size if buffer.full else buffer.pos
    fields = ("observations", "next_observations", "actions", "rewards", "dones", "timeouts")
    arrays = {name: getattr(buffer, name)[:filled] for name in fields if getattr(buffer, name, None) is not None}
    generator = np.random.get_state()  # noqa: NPY002 - SB3 draws its random actions and noise from it
    arrays["numpy_rng"] = {"keys": generator[1], "position": int(generator[2]), "has_gauss": int(generator[3]),
                           "cached_gaussian": float(generator[4])}  # fmt: skip
    save_arrays(folder / _SB3_BUFFER, arrays, format="bench-rl-sb3-buffer")
    version, internal, gauss = random.getstate()
    progress = {
        "num_timesteps": model.num_timesteps, "n_updates": model._n_updates, "episode_num": model._episode_num,
        "buffer_pos": buffer.pos, "buffer_full": buffer.full, "seconds": seconds,
        "python_rng": [version, list(internal), gauss],
    }  # fmt: skip
    save_json(folder / _SB3_PROGRESS, progress, format="bench-rl-sb3-progress")


def _load_sb3(model, folder: Path) -> float:
    """Restore what :func:`_save_sb3` wrote into a fresh ``model``; returns the seconds trained so far."""
    progress = load_json(folder / _SB3_PROGRESS, format="bench-rl-sb3-progress")
    state = load_torch(folder / _SB3_STATE, format="bench-rl-sb3-state")
    model.policy.load_state_dict(state["policy"])
    model.actor.optimizer.load_state_dict(state["optimizers"]["actor"])
    model.critic.optimizer.load_state_dict(state["optimizers"]["critic"])
    if "ent_coef" in state["optimizers"]:
        with torch.no_grad():
            model.log_ent_coef.copy_(state["log_ent_coef"])
        model.ent_coef_optimizer.load_state_dict(state["optimizers"]["ent_coef"])
    torch.set_rng_state(state["torch_rng"])
    arrays = load_arrays(folder / _SB3_BUFFER, format="bench-rl-sb3-buffer")
    buffer = model.replay_buffer
    generator = arrays.pop("numpy_rng")
    for name, values in arrays.items():
        getattr(buffer, name)[: values.shape[0]] = values
    buffer.pos, buffer.full = int(progress["buffer_pos"]), bool(progress["buffer_full"])
    saved = ("MT19937", generator["keys"], generator["position"], generator["has_gauss"], generator["cached_gaussian"])
    np.random.set_state(saved)  # noqa: NPY002 - see _save_sb3
    version, internal, gauss = progress["python_rng"]
    random.setstate((version, tuple(internal), gauss))
    model.num_timesteps, model._n_updates = int(progress["num_timesteps"]), int(progress["n_updates"])
    model._episode_num = int(progress["episode_num"])
    return float(progress["seconds"])


def _train_sb3(config: RunConfig, folder: Path) -> dict:
    """SB3's agent with ``config``'s hyperparameters, evaluated like ours; writes history.csv and summary.json.

    Resumable: every ``config.checkpoint_every`` steps the run's state is saved (:func:`_save_sb3`), and a run
    that finds it continues from there. Unlike our agents' resume this is not exact: SB3 cannot save the
    environment in the middle of an episode, so the resumed run starts a new episode at the checkpoint.
    """
    from stable_baselines3.common.callbacks import BaseCallback

    folder.mkdir(parents=True, exist_ok=True)
    env, eval_env = make_run_env(config), make_run_env(config, evaluation=True)
    model = sb3_agent(config.algo, env, config.algo_config(), seed=config.seed)
    history: list[dict] = []
    spent = 0.0
    if (folder / _SB3_PROGRESS).exists():
        spent = _load_sb3(model, folder)
        with (folder / "history.csv").open() as file:
            history = [{k: int(v) if k == "step" else float(v) for k, v in row.items()} for row in csv.DictReader(file)]
        history = [row for row in history if row["step"] <= model.num_timesteps]
        print(f"{folder.name}: resumed SB3 at step {model.num_timesteps:,}", flush=True)

    def write_history() -> None:
        # After every evaluation (a long run's curve is readable while it runs, and survives an interruption),
        # through a temporary file renamed over the old one.
        partial = folder / "history.csv.tmp"
        with partial.open("w", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=[k for k in history[0] if k != "returns"], extrasaction="ignore")
            writer.writeheader()
            writer.writerows(history)
        partial.replace(folder / "history.csv")

    began = time.perf_counter()

    class EvaluateAndCheckpoint(BaseCallback):
        def _on_step(self) -> bool:
            if self.num_timesteps % config.eval_every == 0:
                result = evaluate_policy(self.model, eval_env, episodes=config.eval_episodes, seed=config.eval_seed)
                history.append({"step": self.num_timesteps, **result.row(), "returns": list(result.returns)})
                write_history()
            if self.num_timesteps % config.checkpoint_every == 0 and self.num_timesteps < config.total_steps:
                _save_sb3(self.model, folder, spent + time.perf_counter() - began)
            return True

    model.learn(config.total_steps - model.num_timesteps, callback=EvaluateAndCheckpoint(), reset_num_timesteps=False)
    seconds = spent + time.perf_counter() - began
    critic = getattr(model, "critic", None) or getattr(model, "q_net", None)
    parameters = {
        name: {"weights": sum(p.numel() for n, p in module.named_parameters() if n.endswith("weight"))}
        for name, module in (("actor", getattr(model, "actor", None)), ("critic", critic))
        if module is not None
    }
    summary = {
        "env": config.env, "algo": config.algo, "strategy": "sb3", "actor_density": 1.0, "critic_density": 1.0,
        "seed": config.seed, "steps": config.total_steps, "final_return_mean": history[-1]["return_mean"],
        "final_return_std": history[-1]["return_std"], "parameters": parameters, "training_flops": None,
        "train_seconds": seconds, "steps_per_second": config.total_steps / seconds,
    }  # fmt: skip
    (folder / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def _read_curve(folder: Path) -> list[tuple[int, float]]:
    with (folder / "history.csv").open() as file:
        return [(int(row["step"]), float(row["return_mean"])) for row in csv.DictReader(file)]


def command_returns(args: argparse.Namespace) -> None:
    out = Path(args.out_dir)
    (out / "runs").mkdir(parents=True, exist_ok=True)
    extra = _setting_values(args.set or [])
    set_threads(args.threads)
    rows = []
    for env in args.envs:
        for algo in args.algos:
            settings = [("dense", 1.0)] if "dense" in args.strategies else []
            settings += [(s, d) for s in args.strategies if s != "dense" for d in args.densities]
            settings += [("sb3", 1.0)] if args.sb3 else []
            for strategy, density in settings:
                for seed in args.seeds:
                    name = _run_name(env, algo, strategy, density, seed)
                    folder = out / "runs" / name
                    agent = dict(extra)
                    if strategy not in ("dense", "sb3"):
                        agent.update(strategy=strategy, actor_density=density, critic_density=density)
                    config = RunConfig(
                        env=env, algo=algo, total_steps=args.steps, seed=seed, eval_every=args.eval_every,
                        eval_episodes=args.eval_episodes, checkpoint_every=args.eval_every * 5, threads=args.threads,
                        agent=agent,
                    )  # fmt: skip
                    began = time.perf_counter()
                    if (folder / "summary.json").exists():
                        summary = json.loads((folder / "summary.json").read_text())
                        if strategy != "sb3" and summary.get("steps") != args.steps:
                            raise SystemExit(f"{folder} holds a run of {summary.get('steps')} steps, not {args.steps}")
                    elif strategy == "sb3":
                        summary = _train_sb3(config, folder)
                    else:
                        resume = (folder / "checkpoint.json").exists()
                        summary = train_rl(
                            config, folder, resume=resume, overwrite=not resume and folder.exists(), log=None
                        ).summary
                    print(f"{name:45} final {summary['final_return_mean']:9.2f} ({time.perf_counter() - began:6.0f} s)")
                    sys.stdout.flush()
                    rows.append({"name": name, "folder": folder, "env": env, "algo": algo, "strategy": strategy,
                                 "density": density, "seed": seed, "summary": summary})  # fmt: skip
    _write_results(out, rows)


def _write_results(out: Path, rows: list[dict]) -> None:
    with (out / "results.csv").open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["env", "algo", "strategy", "density", "seed", "final_return_mean", "final_return_std",
                         "actor_weights", "critic_weights", "training_flops", "steps_per_second"])  # fmt: skip
        for row in rows:
            s = row["summary"]
            weights = {name: count.get("weights") for name, count in s["parameters"].items()}
            writer.writerow([row["env"], row["algo"], row["strategy"], row["density"], row["seed"],
                             s["final_return_mean"], s["final_return_std"], weights.get("actor", ""),
                             weights.get("critic", ""), s["training_flops"], s["steps_per_second"]])  # fmt: skip
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault((row["env"], row["algo"], row["strategy"], row["density"]), []).append(row)
    lines = [
        "| env | algo | strategy | density | seeds | final return (mean +- sd over seeds) | per seed "
        "| last 3 evaluations (mean +- sd over seeds) | steps to dense final | actor weights | critic weights "
        "| training FLOPs | steps/s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (env, algo, strategy, density), members in groups.items():
        finals = [m["summary"]["final_return_mean"] for m in members]
        dense = groups.get((env, algo, "dense", 1.0))
        reach = "-"
        if dense:
            target = statistics.mean(m["summary"]["final_return_mean"] for m in dense)
            steps = []
            for member in members:
                hits = [step for step, value in _read_curve(member["folder"]) if value >= target]
                steps.append(hits[0] if hits else None)
            found = [s for s in steps if s is not None]
            reach = f"{statistics.mean(found):,.0f} ({len(found)}/{len(steps)})" if found else f"never (0/{len(steps)})"
        parameters = members[0]["summary"]["parameters"]
        flops = [m["summary"]["training_flops"] for m in members if m["summary"]["training_flops"]]
        flops_text = f"{statistics.mean(flops):.3g}" if flops else "-"
        sd = statistics.stdev(finals) if len(finals) > 1 else 0.0
        per_seed = ", ".join(f"{value:.1f}" for value in finals)
        # the last evaluation alone swings (DQN's greedy policy can fall from solved to a 500-step timeout and
        # back between two evaluations): the mean of the last three per seed is the steadier figure
        tails = [statistics.mean(value for _, value in _read_curve(m["folder"])[-3:]) for m in members]
        tail_sd = statistics.stdev(tails) if len(tails) > 1 else 0.0
        # wall-clock rate of the whole run (evaluations included): background runs on a shared machine
        rate = statistics.mean(m["summary"]["steps_per_second"] for m in members)
        lines.append(
            f"| {env} | {algo} | {strategy} | {density:g} | {len(members)} | {statistics.mean(finals):.1f} +- {sd:.1f} "
            f"| {per_seed} | {statistics.mean(tails):.1f} +- {tail_sd:.1f} | {reach} "
            f"| {parameters.get('actor', {}).get('weights', '-')} | "
            f"{parameters.get('critic', {}).get('weights', '-')} | {flops_text} | {rate:.0f} |"
        )
    (out / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    speed = sub.add_parser("speed", help="training steps/s, ours vs SB3")
    speed.add_argument("--steps", type=int, default=2000, help="timed steps after the warm-up [2000]")
    speed.add_argument("--threads", type=lambda t: [int(x) for x in t.split(",")], default=[2, 1])
    speed.add_argument("--tasks", type=lambda t: t.split(","), default=["sac", "td3", "dqn"])
    speed.add_argument("--densities", type=lambda t: [float(x) for x in t.split(",")], default=[0.5, 0.1])
    speed.add_argument("--busy", action="store_true", help="run one competing busy process (yes > /dev/null)")
    speed.set_defaults(handler=command_speed)
    returns = sub.add_parser("returns", help="returns over algorithms x strategies x densities x seeds x envs")
    returns.add_argument("--out-dir", required=True)
    returns.add_argument("--envs", type=lambda t: t.split(","), default=["CartPole-v1"])
    returns.add_argument("--algos", type=lambda t: t.split(","), default=["dqn"])
    returns.add_argument("--strategies", type=lambda t: t.split(","), default=["dense", "set"])
    returns.add_argument("--densities", type=lambda t: [float(x) for x in t.split(",")], default=[0.5, 0.1])
    returns.add_argument("--seeds", type=lambda t: [int(x) for x in t.split(",")], default=[0, 1, 2])
    returns.add_argument("--steps", type=int, default=50_000)
    returns.add_argument("--eval-every", type=int, default=5_000)
    returns.add_argument("--eval-episodes", type=int, default=10)
    returns.add_argument("--threads", type=int, default=1)
    returns.add_argument("--sb3", action="store_true", help="add SB3's agent with the same hyperparameters")
    returns.add_argument("--set", action="append", metavar="FIELD=VALUE", help="an agent setting for every run")
    returns.set_defaults(handler=command_returns)
    args = parser.parse_args()
    args.handler(args)


if __name__ == "__main__":
    main()
