"""`python -m helpers summary RUN_FOLDER...`: the results table of saved runs (as in docs/results.md), one row a
run (helpers.analysis.run_summary), and for several runs of the same settings but the seed, their mean and
standard deviation and the share that reached 85.9%."""

import os
import statistics
from pathlib import Path

from helpers.commands.cli import OneLineParser, run_command
from helpers.config import ACCURACY, results_settings


def summary_table(summaries: dict) -> str:
    """A markdown table with one row per run: {name: run_summary of its history}."""
    lines = [
        "| run | epochs | best test acc | last test acc | first epoch >= 85.9% | s/epoch | total | device | precision |",
        "|---|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for name, s in summaries.items():
        lines.append(
            f"| {cell(name)} | {s['epochs']} | {s['best_acc']:.2%} (epoch {s['best_epoch']}) | {s['last_acc']:.2%} | "
            f"{s['first_epoch_published'] or 'not reached'} | {s['seconds_per_epoch']:.1f} | "
            f"{s['seconds_total'] / 60:.1f} min | {cell(s['device'])} | {s['precision']} |"
        )
    return "\n".join(lines)


def cell(text) -> str:
    """Text as one table cell: a '|' or a line break in a name cannot add a column or a row."""
    return " ".join(str(text).replace("|", "/").split())


def spread(summaries: list[dict]) -> dict:
    """Mean and standard deviation of best and last accuracy over runs (run_summary of each), and the
    fraction of runs that reached the published accuracy, with their mean first epoch there."""

    def mean_std(key):
        values = [s[key] for s in summaries]
        return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0

    reached = [s["first_epoch_published"] for s in summaries if s["first_epoch_published"] is not None]
    return {
        "best": mean_std("best_acc"),
        "last": mean_std("last_acc"),
        "reached": len(reached) / len(summaries),
        "first_epoch_published": statistics.mean(reached) if reached else None,
    }


def report(named_histories: dict) -> str:
    """The results table and, for more than one run of the same settings but the seed, their spread."""
    from helpers.analysis import run_summary  # imports torch: not needed for --help

    summaries = {name: run_summary(history) for name, history in named_histories.items()}
    text = summary_table(summaries)
    if len(named_histories) < 2:
        return text
    settings = [{**results_settings(h["config"]), "seed": None} for h in named_histories.values()]
    differing = sorted({key for s in settings for key in s if s[key] != settings[0][key]})
    if differing:
        return text + f"\n\nno spread: the runs differ in more than the seed ({', '.join(differing)})"
    unfinished = [f"{cell(name)} ({len(h['epochs'])} of {h['config']['epochs']} epochs)"
                  for name, h in named_histories.items() if len(h["epochs"]) < h["config"]["epochs"]]  # fmt: skip
    if unfinished:
        return text + f"\n\nno spread: not every run finished: {', '.join(unfinished)}"
    seeds = [h["config"]["seed"] for h in named_histories.values()]
    if len(set(seeds)) < len(seeds):
        repeated = sorted({seed for seed in seeds if seeds.count(seed) > 1})
        return (
            text
            + f"\n\nno spread: runs share a seed ({', '.join(map(str, repeated))}): one run counted twice says nothing"
        )
    stats = spread(list(summaries.values()))
    setups = {(h["meta"]["device"], h["meta"].get("torch")) for h in named_histories.values()}
    where = "" if len(setups) == 1 else f"; on {len(setups)} different devices or torch versions (see the table)"
    return text + (
        f"\n\nover {len(named_histories)} runs: best {stats['best'][0]:.2%} ± {stats['best'][1]:.2%}, "
        f"last {stats['last'][0]:.2%} ± {stats['last'][1]:.2%} (mean ± std); "
        f"{stats['reached']:.0%} reached {ACCURACY:.1%}{where}"
    )


def run_names(runs: list[str]) -> list[str]:
    """A distinct row name per run argument: its folder's name, or the path as given where names repeat."""
    folders = [Path(run).parent if run.endswith(".json") else Path(run) for run in runs]
    names = [Path(os.path.abspath(folder)).name or os.path.abspath(folder) for folder in folders]  # links unfollowed
    if len(set(names)) == len(names):
        return names
    return [str(folder) for folder in folders]


def print_report(argv) -> int:
    parser = OneLineParser(prog="python -m helpers summary", description="Print the results table of saved runs.")
    parser.add_argument("runs", nargs="+", metavar="RUN", help="run folders (or their history.json)")
    args = parser.parse_args(argv)
    from helpers.machinery.checkpoint import load_history

    print(report(dict(zip(run_names(args.runs), (load_history(run) for run in args.runs), strict=True))))
    return 0


def main(argv=None) -> int:
    return run_command(print_report, argv)
