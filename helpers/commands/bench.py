"""Benchmark: training and evaluation images/s of both data pipelines on one device.

`python -m helpers bench [--device cuda] [--steps 200] [--repeats 3]` prints a table and writes it as JSON.
Each pipeline trains the real model on the real data with the same settings as `python -m helpers train`;
the first `--warmup` steps (worker start, cuDNN autotuning, the first augmented chunk) are not timed.
A third row, "model only", trains on test images normalised beforehand and already on the device:
no data pipeline at all, so a pipeline can at best match it. On a CPU the fast pipeline costs a few percent of a
step, less than the runs' spread there, so it can show above that row by noise (docs/performance.md).
Each figure is the median of `--repeats` runs, the three measurements taking turns so that a slow
spell of the machine falls on all of them.
"""

import json
import math
import statistics
import sys
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from helpers import UserError
from helpers.commands.cli import OneLineParser, add_config_flags, config_from_flags, run_command
from helpers.config import PIPELINES, SMOKE, Settled
from helpers.machinery.files import check_writable_folder, missing_folders, remove_empty, save_json

MODEL_ONLY = "model only"
# The settings of `python -m helpers train` that a benchmark takes.
SETTINGS = ("batch_size", "precision", "channels_last", "compile", "num_workers", "device", "data_root")
# --dry-run: the SMOKE preset's data and batch, and these few steps: checks in seconds that the
# benchmark runs (not a measurement).
DRY_RUN = dict(steps=2, warmup=1, repeats=1)
MAX_REPORT_BYTES = 1_000_000  # a benchmark's figures are a few KB: a larger --out is something else


def row_seconds(run: Settled, data, steps: int) -> float:
    """How long one row of the benchmark (`steps` training steps, then two passes over the test set) takes,
    at the rate of a 5-step probe of the slowest row, the albumentations pipeline, with a short evaluation."""
    from helpers.timing import measure

    probe = replace(data, test_images=data.test_images[:256], test_labels=data.test_labels[:256])
    batches = math.ceil(len(data.train_labels) / run.config.batch_size)
    figures = measure(Settled(replace(run.config, pipeline="albumentations"), run.device), probe,
                      steps=min(3, batches - 2), warmup=2)  # fmt: skip
    training = steps * run.config.batch_size / figures["train_images_per_s"]
    return training + 2 * len(data.test_labels) / figures["eval_images_per_s"]


def medians(runs: list[dict]) -> dict:
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


def ratios(numerator: dict, denominator: dict) -> dict:
    return {key: numerator[key] / denominator[key] for key in ("train_images_per_s", "eval_images_per_s")}


def build_parser() -> OneLineParser:
    parser = OneLineParser(prog="python -m helpers bench", description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200, help="timed training steps per pipeline [default: 200]")
    parser.add_argument("--warmup", type=int, default=20, help="untimed steps first [default: 20]")
    parser.add_argument(
        "--repeats", type=int, default=3, help="runs of each measurement; the median is shown [default: 3]"
    )
    add_config_flags(parser, SETTINGS)
    parser.add_argument("--out", default="bench.json", help="where to write the figures [default: bench.json]")
    dry_run = {**{k: SMOKE[k] for k in ("subset", "test_subset", "batch_size")}, **DRY_RUN}
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="check in seconds that it runs: " + ", ".join(f"{k}={v}" for k, v in dry_run.items()),
    )
    return parser


def bench(argv) -> int:
    args = build_parser().parse_args(argv)
    config = config_from_flags(args, "smoke" if args.dry_run else "recipe")
    if args.dry_run:
        args.steps, args.warmup, args.repeats = DRY_RUN["steps"], DRY_RUN["warmup"], DRY_RUN["repeats"]
    if min(args.steps, args.warmup, args.repeats) < 1:
        raise UserError("--steps, --warmup and --repeats must be at least 1")
    config.validate()  # a bad flag is reported before torch is imported
    from helpers.training import settle

    run = settle(config)
    out = Path(args.out)
    check_out(out)  # before the benchmark, not after
    made = missing_folders(out.parent)
    check_writable_folder(out.parent, "the folder of --out")
    try:
        report = benchmark(args, run, argv)
        save_json(out, report)
    except BaseException:  # stopped or failed: the folders made for --out go again
        remove_empty(made)
        raise
    print(f"written to {out}")
    return 0


def check_out(out: Path):
    """Refuse an --out that is a folder, or a file other than an earlier benchmark's figures (which are
    replaced, as each run of `make bench` replaces bench.json)."""
    if out.is_dir():
        raise UserError(f"--out {out} is a folder: name the file to write, such as {out / 'bench.json'}")
    if not (out.exists() or out.is_symlink()):
        return
    try:
        report = json.loads(out.read_text()) if out.is_file() and out.stat().st_size < MAX_REPORT_BYTES else None
    except (OSError, ValueError):
        report = None
    if not (isinstance(report, dict) and "bench" in str(report.get("command")) and "pipelines" in report):
        raise UserError(f"--out {out} holds something other than a benchmark's figures: choose another --out")


def benchmark(args, run: Settled, argv) -> dict:
    """Measure each pipeline and the model alone, print the table, and return the report to save."""
    config, device = run
    from helpers.data import load_cifar10
    from helpers.machinery.hardware import device_name
    from helpers.timing import duration, measure

    data = load_cifar10(config.data_root, subset=config.subset, test_subset=config.test_subset)
    rows = (*PIPELINES, MODEL_ONLY)
    total = len(rows) * args.repeats * row_seconds(run, data, args.warmup + args.steps)
    print(
        f"{len(rows)} rows, {args.repeats} time(s) each: about {duration(total)} here (from a 5-step probe)", flush=True
    )
    pipelines = {pipeline: Settled(replace(config, pipeline=pipeline), device) for pipeline in PIPELINES}
    runs = {name: [] for name in rows}
    for _ in range(args.repeats):
        for pipeline, pipeline_run in pipelines.items():
            runs[pipeline].append(measure(pipeline_run, data, args.steps, args.warmup))
        runs[MODEL_ONLY].append(measure(pipelines["fast"], data, args.steps, args.warmup, model_only=True))
    results = {name: medians(figures) for name, figures in runs.items()}

    import torch

    report = {
        "device": device_name(device),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(["python -m helpers bench", *(argv if argv is not None else sys.argv[1:])]),
        "torch": str(torch.__version__),
        "precision": config.precision,
        "dry_run": args.dry_run,
        "settings": {
            **{k: v for k, v in vars(args).items() if k not in (*SETTINGS, "out")},
            **{k: getattr(config, k) for k in SETTINGS if k != "data_root"},
        },
        "pipelines": results,
        "runs": runs,
        "fast_over_albumentations": ratios(results["fast"], results["albumentations"]),
        "model_only_over_albumentations": ratios(results[MODEL_ONLY], results["albumentations"]),
    }
    print(
        f"device: {report['device']}, batch {config.batch_size}, {config.precision}, "
        f"channels_last={config.channels_last}, compile={config.compile}, {args.steps} timed steps, "
        f"median of {args.repeats} runs" + (" (dry run: not a measurement)" if args.dry_run else "")
    )
    print(f"{'pipeline':<16}{'train img/s':>13}{'eval img/s':>13}{'epoch s (est.)':>16}")
    for name, figures in results.items():
        print(
            f"{name:<16}{figures['train_images_per_s']:>13,.0f}{figures['eval_images_per_s']:>13,.0f}"
            f"{figures['epoch_seconds_estimate']:>16,.1f}"
        )
    for label, key in (
        ("fast / albu.", "fast_over_albumentations"),
        ("model only / albu.", "model_only_over_albumentations"),
    ):
        ratio = report[key]
        print(f"{label:<19}{ratio['train_images_per_s']:>9.2f}x{ratio['eval_images_per_s']:>12.2f}x")
    print(
        "(model only: the same training on batches made beforehand, no data pipeline. A pipeline can at best "
        "match it; a row above it by a few percent is run-to-run noise, about 10% on a 2-core CPU)"
    )
    return report


def main(argv=None) -> int:
    return run_command(bench, argv)
