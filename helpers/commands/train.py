"""`python -m helpers train [--epochs N ...]` runs the published recipe (see --help)."""

import argparse
import sys
from dataclasses import asdict, replace

from helpers.commands.cli import OneLineParser, add_config_flags, config_from_flags, given_settings, run_command
from helpers.config import SMOKE, TrainConfig
from helpers.machinery.checkpoint import load_checkpoint
from helpers.machinery.run_folder import FINISHED, run_status


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="python -m helpers train",
        description="Train the 84,904-parameter CIFAR-10 CNN with the published recipe; "
        "every flag overrides one setting of helpers.config.TrainConfig.",
    )
    add_config_flags(parser)
    parser.add_argument(
        "--smoke", action="store_true", help=f"a dry run in seconds: {', '.join(f'{k}={v}' for k, v in SMOKE.items())}"
    )
    parser.add_argument(
        "--resume",
        metavar="RUN",
        help="continue the run in this folder (or checkpoint.pt); "
        "its settings are kept, and --out defaults to its folder",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace a run already in --out")
    return parser


def config_from_args(args: argparse.Namespace, resume=None) -> TrainConfig:
    """TrainConfig defaults (the --smoke preset's with --smoke), or the resumed checkpoint's settings,
    overridden by the flags given."""
    if resume is None:
        return config_from_flags(args, "smoke" if args.smoke else "recipe")
    given = given_settings(args)
    return replace(resume.config, out=given.pop("out", str(resume.path.parent)), **given)


def train(argv) -> int:
    args = build_parser().parse_args(argv)
    resume = load_checkpoint(args.resume) if args.resume is not None else None
    config = config_from_args(args, resume).validate()  # a fresh run's bad flag is reported before torch is imported
    from helpers.analysis import summary_line
    from helpers.timing import estimate_epochs
    from helpers.training import describe, fit, settle

    run = settle(config)
    config, device = run
    if resume is not None and run_status(asdict(resume.config), resume["epoch"], config) == FINISHED:
        print(f"{resume.path.parent} holds a finished run ({config.epochs} epochs): nothing to train, nothing written")
        return 0
    if device.type == "cpu" and config.subset is None:
        print(
            f"warning: no GPU in use: {config.epochs} epochs of 50,000 images take hours on a CPU "
            "(measured below before it starts); for a quick run add --smoke",
            file=sys.stderr,
        )
    print(describe(run), flush=True)
    left = config.epochs - (resume["epoch"] if resume is not None else 0)

    def say_how_long(data):  # the whole training set: minutes on a GPU, hours on a CPU
        if config.subset is None:
            print(estimate_epochs(run, data, left), flush=True)

    history = fit(run, resume=resume, overwrite=args.overwrite, on_start=say_how_long)
    print(f"{summary_line(history)}; results in {config.out}/ (history.json, checkpoint.pt)")
    return 0


def main(argv=None) -> int:
    return run_command(train, argv)
