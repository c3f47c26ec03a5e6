"""Reduced reproduction of inverse-dynamics pretraining (Brandfonbrener et al. 2023) on a hidden-context pixel task.

Protocol (the paper's, scaled down; every number below is a flag):

1. Pretraining corpora: expert demos (scripted expert, action noise 0.1) of contexts 0..K-2 of
   ``--env`` (default ``robokit/PointMassGoal-v0``, K = 12 goals on a ring, 64x64 frames, goal not
   drawn; ``robokit/PushHidden-v0``: K = 8 target zones; ``--contexts`` defaults to the env's K),
   two sizes (``--corpus-sizes``, episodes per context). Context K-1 is held out.
2. One encoder per (corpus, objective), pretraining seed 0 (``--pretrain-seed N`` trains another
   encoder per (corpus, objective) with seed N, kept apart: run folders ``<objective>_pseedN``,
   result keys ending ``|pseedN``, so seed 0's results stay as they are): ``inverse_dynamics``, ``bc``, ``contrastive``
   (contrastive dynamics, with actions), ``simclr`` (contrastive without actions, two shifts of
   o_t), ``forward``, ``reconstruction`` (``robokit pretrain``'s defaults except the budget).
3. For each seed and each number of fine-tuning demos (``--demos``, default 2 5 10) of the
   held-out context (a fresh set per seed): the frozen encoder encodes the demos once, a BC MLP
   head is fitted on the embeddings, the policy is rolled out ``--eval-episodes`` times in the
   held-out context. Floor: BC from scratch on pixels (same encoder architecture, random
   weights, trained end to end with the random shift); ceiling: BC on the privileged state.
4. Mean success rate with a 95% Student-t interval over seeds, per cell; the paired difference
   to BC from scratch (same demos, same seed) over all (demos, seed) cells; a PNG plot. When the
   results hold several pretraining seeds of an encoder: that difference per pretraining seed, and
   pooled (:func:`pretrain_seed_differences`).
5. Diagnostic, per encoder: a linear (ridge) probe of the drawn bodies' xy (the env family's
   ``position_dims`` of the privileged state: the point mass's xy; the pusher's and the puck's) from the frozen
   embeddings, fitted on the corpus frames and scored (R^2) on frames of held-out-context demos,
   (ridge alpha 1, and 1e-6 for information at any scale) and how much the embeddings vary over
   those frames (``robokit.pretrain.probe.embedding_probe``);
   the untrained encoder is probed too, as the reference.

Resumable: every encoder is a run folder under ``--workdir`` (``--resume``d when interrupted),
every finished cell a row of ``results.json`` (skipped when rerun). ``--quick`` is a smoke run
(tiny corpora and budgets, 2 seeds, 1 demo count), not a result.

Usage: ``python benchmarks/id_pretrain.py [--quick] [--workdir DIR]``; the last line is the JSON.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

PRETRAIN_OBJECTIVES = {  # name -> (robokit objective, objective-option overrides)
    "inverse_dynamics": ("inverse_dynamics", {}),
    "bc": ("bc", {}),
    "contrastive": ("contrastive", {"include_action": True}),
    "simclr": ("contrastive", {"include_action": False}),
    "forward": ("forward", {}),
    "reconstruction": ("reconstruction", {}),
}
BASELINES = ("scratch", "state")


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: tiny corpora, budgets and grid")
    parser.add_argument("--env", default="robokit/PointMassGoal-v0")
    parser.add_argument("--contexts", type=int, default=None,
                        help="K: contexts 0..K-2 pretrain, K-1 held out (default: the env's number of contexts)")
    parser.add_argument("--corpus-sizes", type=int, nargs="+", default=[1, 10], help="episodes per context")
    parser.add_argument("--demos", type=int, nargs="+", default=[2, 5, 10], help="fine-tuning demos")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--objectives", nargs="+", default=["inverse_dynamics", "scratch", "state", "bc",
                                                             "contrastive"],
                        help=f"any of {', '.join([*PRETRAIN_OBJECTIVES, *BASELINES])}")
    parser.add_argument("--pretrain-steps", type=int, default=500)
    parser.add_argument("--pretrain-batch", type=int, default=64)
    parser.add_argument("--head-steps", type=int, default=1000)
    parser.add_argument("--head-batch", type=int, default=128)
    parser.add_argument("--scratch-steps", type=int, default=1000)
    parser.add_argument("--scratch-batch", type=int, default=32)
    parser.add_argument("--eval-episodes", type=int, default=20)
    parser.add_argument("--validation-demos", type=int, default=10, help="held-out-context demos for the action MSE")
    parser.add_argument("--noise", type=float, default=0.1, help="expert action noise in the corpora")
    parser.add_argument("--pretrain-seed", type=int, default=0,
                        help="seed of the pretraining runs (encoder init, pair sampling, shifts); N > 0 is stored "
                             "apart from seed 0 (folders <objective>_pseedN, keys ...|pseedN), the baselines' cells "
                             "(scratch, state) are shared")
    parser.add_argument("--workdir", type=Path, default=Path("runs/id_pretrain"))
    parser.add_argument("--report", action="store_true", help="only print the tables and plot of results.json")
    parser.add_argument("--plot", type=Path, default=None, help="PNG (default: <workdir>/id_pretrain.png)")
    args = parser.parse_args()
    unknown = [m for m in args.objectives if m not in PRETRAIN_OBJECTIVES and m not in BASELINES]
    if unknown:
        parser.error(f"--objectives: unknown {', '.join(unknown)}")
    family = env_family(args.env)
    if family is None:
        parser.error(f"--env: {args.env} is not a hidden-context family ({', '.join(hidden_context_envs())})")
    args.contexts = family.default_contexts if args.contexts is None else args.contexts
    if not 2 <= args.contexts <= family.default_contexts:
        parser.error(f"--contexts: {args.env} has contexts 0..{family.default_contexts - 1}, got K = {args.contexts}")
    if args.quick:
        args.corpus_sizes, args.demos, args.seeds = [1], [2], 2
        args.pretrain_steps, args.head_steps, args.scratch_steps, args.eval_episodes = 20, 50, 20, 2
        args.validation_demos = 2
        args.pretrain_batch = 16
        if args.workdir == Path("runs/id_pretrain"):
            args.workdir = Path("runs/id_pretrain_quick")
    return args


def hidden_context_envs() -> list[str]:
    from robokit.envs.hidden_context import FAMILIES

    return list(FAMILIES)


def env_family(env_id: str):
    """The hidden-context family class of ``env_id`` (``robokit.envs.hidden_context.FAMILIES``), or None."""
    from robokit.envs.hidden_context import FAMILIES

    return FAMILIES.get(env_id)


def probe_targets(env_id: str, states: np.ndarray) -> np.ndarray:
    """The state probe's targets ``(N, P)`` from privileged states ``(N, S)``: the xy of every body the frame
    draws (the family's ``position_dims``: the point mass's xy; the pusher's and the puck's xy)."""
    return np.asarray(states)[:, list(env_family(env_id).position_dims)]


def corpus_demos(args: argparse.Namespace, per_context: int):
    from robokit.pretrain.data import demos_from_episodes
    from robokit.pretrain.demos import make_demos

    contexts = list(range(args.contexts - 1))
    episodes = make_demos(args.env, contexts, per_context, seed=0, noise=args.noise)
    return demos_from_episodes(episodes, source=f"{args.env} corpus {per_context}/context")


def finetune_demos(args: argparse.Namespace, count: int, seed: int):
    from robokit.pretrain.data import demos_from_episodes
    from robokit.pretrain.demos import make_demos

    episodes = make_demos(args.env, [args.contexts - 1], count, seed=10_000 + seed)
    return demos_from_episodes(episodes, source=f"{args.env} held-out {count} demos seed {seed}")


def pretrain_encoder(args: argparse.Namespace, demos, corpus: int, name: str) -> Path:
    """final.pt of the (corpus, objective) encoder, trained (or resumed) when missing."""
    from robokit.pretrain.objectives import ObjectiveOptions
    from robokit.pretrain.training import PretrainConfig, pretrain

    out = args.workdir / "encoders" / f"corpus{corpus}" / (name + seed_suffix(args.pretrain_seed, "_"))
    if (out / "final.pt").is_file():
        return out / "final.pt"
    objective, overrides = PRETRAIN_OBJECTIVES[name]
    options = ObjectiveOptions(decoder_widths=(32, 32, 16, 16), **overrides)
    cfg = PretrainConfig(objective=objective, data=out / "in-memory", out=out, steps=args.pretrain_steps,
                         batch_size=args.pretrain_batch, objective_options=options, seed=args.pretrain_seed,
                         checkpoint_every=max(1, args.pretrain_steps // 4), progress=False,
                         resume=out.exists() and any(out.iterdir()))
    started = time.perf_counter()
    result = pretrain(cfg, demos)
    losses = ", ".join(f"{k} {v:.4f}" for k, v in result["metrics"].items() if k.startswith("losses/"))
    print(f"  pretrained {name} on corpus {corpus}/context in {time.perf_counter() - started:.0f} s ({losses})",
          flush=True)
    return result["checkpoint"]


def run_cell(args: argparse.Namespace, method: str, encoder: Path | None, demos, validation, seed: int) -> dict:
    """Fit one policy on ``demos``, score its actions on ``validation`` demos (MSE against the expert's) and
    roll it out in the held-out context."""
    from robokit.pretrain.finetune import (
        FinetuneConfig,
        HeadOptions,
        fit_policy,
        make_context_env,
        rollout,
    )

    mode = method if method in BASELINES else "frozen"
    scratch = mode == "scratch"
    head = HeadOptions(steps=args.scratch_steps if scratch else args.head_steps,
                       batch_size=args.scratch_batch if scratch else args.head_batch)
    cfg = FinetuneConfig(data=None, out=None, encoder=encoder, mode=mode, head=head, seed=seed)
    torch.manual_seed(seed)
    started = time.perf_counter()
    policy, _, loss = fit_policy(cfg, demos, torch.Generator().manual_seed(seed))
    val_mse = action_mse(policy, validation)
    env = make_context_env(args.env, args.contexts - 1)
    scores = rollout(policy, env, args.eval_episodes, seed=100_000 + 1000 * seed)
    env.close()
    return {**scores, "bc_loss": loss, "val_mse": val_mse, "seconds": time.perf_counter() - started}


def action_mse(policy, demos) -> float:
    """Mean squared error of the policy's actions against the expert's on every step of ``demos``."""
    steps = demos.steps()
    obs = ({"image": steps["image"], "state": steps["state"]} if "state" in steps else steps["image"])
    predicted = []
    for i in range(len(steps["action"])):
        one = {"image": obs["image"][i], "state": obs["state"][i]} if isinstance(obs, dict) else obs[i]
        predicted.append(policy(one, {"state": steps["state"][i]} if "state" in steps else {}))
    return float(np.mean((np.stack(predicted) - steps["action"]) ** 2))


def seed_suffix(pretrain_seed: int, separator: str = "|") -> str:
    """What marks a pretraining seed's folders and result keys: nothing for seed 0 (the first run's)."""
    return f"{separator}pseed{pretrain_seed}" if pretrain_seed else ""


def probe_key(method: str, corpus: int, pretrain_seed: int = 0) -> str:
    return f"probe|corpus{corpus}|{method}" + seed_suffix(pretrain_seed if method != "untrained" else 0)


def probe(env_id: str, corpus, validation, encoder_path: Path | None) -> dict[str, float]:
    """The state probe of one encoder (``None``: the untrained one, seed 0): ridge from its embeddings to the
    drawn bodies' xy (:func:`probe_targets`), fitted on the corpus frames, R^2 on the held-out-context
    validation frames; with the embeddings' spread over those frames."""
    from robokit.pretrain.objectives import EncoderOptions, PixelEncoder
    from robokit.pretrain.probe import embedding_probe
    from robokit.pretrain.training import load_encoder

    if encoder_path is None:
        torch.manual_seed(0)
        encoder = PixelEncoder(corpus.frame, EncoderOptions())
    else:
        encoder = load_encoder(encoder_path)
    train, test = corpus.steps(), validation.steps()
    return embedding_probe(encoder, train["image"], probe_targets(env_id, train["state"]), test["image"],
                           probe_targets(env_id, test["state"]))


def jobs(args: argparse.Namespace) -> list[tuple[str, int | None]]:
    """(method, corpus) in run order: the largest corpus's objectives with the baselines after the first,
    then the other corpora."""
    pretrained = [m for m in args.objectives if m in PRETRAIN_OBJECTIVES]
    baselines = [(m, None) for m in args.objectives if m in BASELINES]
    order: list[tuple[str, int | None]] = []
    for corpus in sorted(args.corpus_sizes, reverse=True):
        order += [(m, corpus) for m in pretrained]
    return order[:1] + baselines + order[1:]


def load_results(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def save_results(path: Path, results: dict) -> None:
    from robokit.core.atomic import atomic_path

    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(results, indent=1, sort_keys=True))


def cell_key(method: str, corpus: int | None, demos: int, seed: int, pretrain_seed: int = 0) -> str:
    """A fine-tuning cell's key; the baselines (corpus None) have no pretraining seed."""
    return (f"{method}|corpus{corpus if corpus is not None else '-'}|demos{demos}|seed{seed}"
            + seed_suffix(pretrain_seed if corpus is not None else 0))


def summarise(args: argparse.Namespace, results: dict, metric: str = "success_rate") -> dict:
    """{(method, corpus, demos): (mean, low, high, n)} of ``metric`` over seeds."""
    from robokit.pretrain.finetune import mean_interval

    table = {}
    for method in args.objectives:
        for corpus in ([None] if method in BASELINES else args.corpus_sizes):
            for demos in args.demos:
                values = [results[k][metric] for s in range(args.seeds)
                          if (k := cell_key(method, corpus, demos, s, args.pretrain_seed)) in results]
                if values:
                    table[(method, corpus, demos)] = (*mean_interval(values), len(values))
    return table


def cell_differences(args: argparse.Namespace, results: dict, method: str, corpus: int | None,
                     pretrain_seed: int = 0, baseline: str = "scratch") -> dict[tuple[int, int], float]:
    """{(demos, seed): success(method) - success(baseline)} over the cells both have (paired: both fit
    the same demos with the same seed). A pretrained ``baseline`` is taken on the same corpus and
    pretraining seed (e.g. ID minus BC); scratch and state have neither."""
    base_corpus, base_seed = (corpus, pretrain_seed) if baseline in PRETRAIN_OBJECTIVES else (None, 0)
    return {(d, s): results[k]["success_rate"] - results[b]["success_rate"]
            for d in args.demos for s in range(args.seeds)
            if (k := cell_key(method, corpus, d, s, pretrain_seed)) in results
            and (b := cell_key(baseline, base_corpus, d, s, base_seed)) in results}


def paired_differences(args: argparse.Namespace, results: dict, baseline: str = "scratch") -> dict:
    """{(method, corpus): (mean, low, high, n)} of ``success(method) - success(baseline)`` over the (demos,
    seed) cells both have, for the encoders of ``args.pretrain_seed``."""
    from robokit.pretrain.finetune import mean_interval

    table = {}
    for method in args.objectives:
        if method == baseline:
            continue
        for corpus in ([None] if method in BASELINES else args.corpus_sizes):
            diffs = list(cell_differences(args, results, method, corpus, args.pretrain_seed, baseline).values())
            if diffs:
                table[(method, corpus)] = (*mean_interval(diffs), len(diffs))
    return table


def pretrain_seeds(results: dict, method: str, corpus: int) -> list[int]:
    """The pretraining seeds with fine-tuning cells of (method, corpus) in ``results``."""
    prefix = f"{method}|corpus{corpus}|"
    return sorted({int(k.rpartition("|pseed")[2]) if "|pseed" in k else 0 for k in results if k.startswith(prefix)})


def pretrain_seed_differences(args: argparse.Namespace, results: dict, baseline: str = "scratch") -> dict:
    """For each (pretrained method, corpus) with cells from two or more pretraining seeds:
    ``{"per_seed": {seed: (mean, low, high, n)}, "pooled": (mean, low, high, n), "across_seeds": (...)}``
    of success minus ``baseline``'s, paired per (demos, seed) cell.

    ``per_seed``: over the cells of that seed's encoder (the usual table). ``pooled``: each cell's
    difference averaged over the pretraining seeds first (the cells share the baseline's run and
    demos, so they are not independent across encoders), then the interval over the cells.
    ``across_seeds``: the interval over the per-seed means (n = seeds), the encoder-to-encoder spread.
    Only cells present for every seed are pooled. A pretrained ``baseline`` (``"bc"``: ID minus BC) is
    paired on the same corpus, pretraining seed and cell; its pooled mean is then the difference of the
    two objectives' means over their encoders, whatever the pairing of seeds."""
    from robokit.pretrain.finetune import mean_interval

    table = {}
    for method in [m for m in args.objectives if m in PRETRAIN_OBJECTIVES and m != baseline]:
        for corpus in args.corpus_sizes:
            seeds = pretrain_seeds(results, method, corpus)
            if len(seeds) < 2:
                continue
            cells = {p: cell_differences(args, results, method, corpus, p, baseline) for p in seeds}
            shared = sorted(set.intersection(*(set(c) for c in cells.values())))
            if not shared:
                continue
            per_seed = {p: (*mean_interval(list(c.values())), len(c)) for p, c in cells.items()}
            pooled = [float(np.mean([cells[p][cell] for p in seeds])) for cell in shared]
            table[(method, corpus)] = {"per_seed": per_seed, "pooled": (*mean_interval(pooled), len(pooled)),
                                       "across_seeds": (*mean_interval([v[0] for v in per_seed.values()]),
                                                        len(seeds))}
    return table


def print_seed_differences(table: dict, baseline: str = "scratch") -> None:
    if not table:
        return
    print(f"\nsuccess minus {baseline}'s by pretraining seed (paired over (demos, seed) cells; mean [95% CI], n); "
          "pooled: each cell averaged over the seeds' encoders first; across seeds: over the per-seed means")
    for (method, corpus), entry in table.items():
        for label, (mean, low, high, n) in [*((f"pretrain seed {p}", row) for p, row in entry["per_seed"].items()),
                                            ("pooled", entry["pooled"]), ("across seeds", entry["across_seeds"])]:
            print(f"{method:<18}{corpus:>8}  {label:<16}{mean:>8.3f} [{low:.3f},{high:.3f}]  n={n}")


def print_probes(args: argparse.Namespace, results: dict) -> None:
    print("\nstate probe: ridge from frozen embeddings to the drawn bodies' xy (state dims "
          f"{list(env_family(args.env).position_dims)}), R^2 on held-out-context frames "
          "(alpha 1, and alpha 1e-6: any scale); embedding std over those frames")
    for corpus in args.corpus_sizes:
        for method in ["untrained", *[m for m in args.objectives if m in PRETRAIN_OBJECTIVES]]:
            for pseed in [0] if method == "untrained" else pretrain_seeds(results, method, corpus) or [0]:
                if (row := results.get(probe_key(method, corpus, pseed))) is not None:
                    name = method + seed_suffix(pseed, " ")
                    print(f"{name:<24}{corpus:>8}   R^2 {row['r2']:.3f}   any scale "
                          f"{row.get('r2_any_scale', float('nan')):.3f}   std {row['embedding_std']:.4f}")


def print_table(args: argparse.Namespace, table: dict, title: str) -> None:
    print(f"\n{title}")
    print(f"{'method':<18}{'corpus':>8}" + "".join(f"{f'{d} demos':>22}" for d in args.demos))
    for method in args.objectives:
        for corpus in ([None] if method in BASELINES else args.corpus_sizes):
            cells = [table.get((method, corpus, d)) for d in args.demos]
            text = "".join(f"{c[0]:>8.3f} [{c[1]:.3f},{c[2]:.3f}]" if c else f"{'-':>22}" for c in cells)
            print(f"{method:<18}{corpus if corpus is not None else '-':>8}{text}")


def plot(args: argparse.Namespace, table: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(args.corpus_sizes), figsize=(5 * len(args.corpus_sizes), 4), sharey=True)
    for ax, corpus in zip(np.atleast_1d(axes), args.corpus_sizes, strict=True):
        for method in args.objectives:
            key_corpus = None if method in BASELINES else corpus
            rows = [(d, *table[(method, key_corpus, d)][:3]) for d in args.demos if (method, key_corpus, d) in table]
            if not rows:
                continue
            x, mean, low, high = (np.array(v) for v in zip(*rows, strict=True))
            style = "--" if method in BASELINES else "-"
            ax.errorbar(x, mean, yerr=[mean - low, high - mean], label=method, linestyle=style, marker="o", capsize=3)
        ax.set_title(f"corpus: {corpus} episodes x {args.contexts - 1} contexts")
        ax.set_xlabel("fine-tuning demos (held-out context)")
        ax.set_xticks(args.demos)
    np.atleast_1d(axes)[0].set_ylabel(f"success rate ({args.seeds} seeds, 95% CI)")
    np.atleast_1d(axes)[-1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    args = parse()
    torch.set_num_threads(1)
    args.workdir.mkdir(parents=True, exist_ok=True)
    results_path = args.workdir / "results.json"
    results = load_results(results_path)
    started = time.perf_counter()
    fine = {} if args.report else {(n, s): finetune_demos(args, n, s) for n in args.demos for s in range(args.seeds)}
    validation = None if args.report else finetune_demos(args, args.validation_demos, seed=10_000)  # fixed held-out demos for the action MSE
    corpora: dict[int, object] = {}
    for method, corpus in [] if args.report else jobs(args):  # largest corpus first
        pseed = args.pretrain_seed
        todo = [(c, s) for (c, s) in fine if cell_key(method, corpus, c, s, pseed) not in results]
        probe_missing = corpus is not None and "r2_any_scale" not in results.get(probe_key(method, corpus, pseed), {})
        if not todo and not probe_missing:
            continue
        encoder = None
        if corpus is not None:
            corpora[corpus] = corpora.get(corpus) or corpus_demos(args, corpus)
            encoder = pretrain_encoder(args, corpora[corpus], corpus, method)
            for name, path in (("untrained", None), (method, encoder)):
                if "r2_any_scale" not in results.get(key := probe_key(name, corpus, pseed), {}):
                    results[key] = probe(args.env, corpora[corpus], validation, path)
                    save_results(results_path, results)
                    print(f"{key}: {results[key]}", flush=True)
        for count, seed in todo:
            key = cell_key(method, corpus, count, seed, pseed)
            results[key] = run_cell(args, method, encoder, fine[(count, seed)], validation, seed)
            save_results(results_path, results)
            print(f"{key}: success {results[key]['success_rate']:.2f}  held-out action MSE "
                  f"{results[key]['val_mse']:.4f}", flush=True)
    table = summarise(args, results)
    for metric, title in (("success_rate", "success rate in the held-out context"),
                          ("val_mse", "action MSE on held-out-context validation demos (lower is better)")):
        print_table(args, summarise(args, results, metric), f"{title} (mean [95% CI] over {args.seeds} seeds)")
    print("\nsuccess minus scratch's, paired over (demos, seed) cells (mean [95% CI], n)")
    differences = paired_differences(args, results)
    for (method, corpus), (mean, low, high, n) in differences.items():
        print(f"{method:<18}{corpus if corpus is not None else '-':>8}{mean:>8.3f} [{low:.3f},{high:.3f}]  n={n}")
    seed_table = pretrain_seed_differences(args, results)
    print_seed_differences(seed_table)
    id_only = argparse.Namespace(**{**vars(args), "objectives": ["inverse_dynamics"]})
    for other in [m for m in args.objectives if m in PRETRAIN_OBJECTIVES and m != "inverse_dynamics"]:
        if "inverse_dynamics" in args.objectives:
            print_seed_differences(pretrain_seed_differences(id_only, results, baseline=other), baseline=other)
    print_probes(args, results)
    plot_path = args.plot or args.workdir / "id_pretrain.png"
    plot(args, table, plot_path)
    print(f"plot: {plot_path}; results: {results_path}")

    def mean_of(method: str) -> float | None:
        values = [v[0] for (m, _, _), v in table.items() if m == method]
        return round(float(np.mean(values)), 3) if values else None

    ours, scratch = mean_of("inverse_dynamics"), mean_of("scratch")
    peers = {m: mean_of(m) for m in args.objectives if m != "inverse_dynamics"}
    print(json.dumps({"benchmark": "id_pretrain", "unit": "success rate (mean over cells)", "higher_is_better": True,
                      "robokit": ours, "peers": peers,
                      "ratio": round(ours / scratch, 3) if ours is not None and scratch else None, "bound": 1.0,
                      "minus_scratch": {f"{m}|corpus{c if c is not None else '-'}": [round(v, 3) for v in row[:3]]
                                        for (m, c), row in differences.items()},
                      "probe_r2": {k.removeprefix("probe|"): round(v["r2"], 3) for k, v in sorted(results.items())
                                   if k.startswith("probe|")},
                      "minus_scratch_by_pretrain_seed": {
                          f"{m}|corpus{c}": {"per_seed": {str(p): [round(v, 3) for v in row[:3]]
                                                          for p, row in entry["per_seed"].items()},
                                             "pooled": [round(v, 3) for v in entry["pooled"][:3]],
                                             "across_seeds": [round(v, 3) for v in entry["across_seeds"][:3]]}
                          for (m, c), entry in seed_table.items()},
                      "notes": f"{args.env}, corpora {args.corpus_sizes} eps/context x {args.contexts - 1} contexts, "
                               f"demos {args.demos}, {args.seeds} seeds, pretrain {args.pretrain_steps} steps "
                               f"(batch {args.pretrain_batch}), head {args.head_steps} steps, scratch "
                               f"{args.scratch_steps} steps, {args.eval_episodes} rollouts/cell, pretraining seed "
                               f"{args.pretrain_seed}; ratio = ID / scratch; "
                               f"{time.perf_counter() - started:.0f} s" + (" (--quick smoke run)" if args.quick else "")}))


if __name__ == "__main__":
    main()
