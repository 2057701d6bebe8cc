"""Command line: `python -m helpers.train [--epochs N ...]` runs the published recipe (see --help)."""

import argparse
import sys
from dataclasses import replace

from helpers.cli import OneLineParser, add_config_flags, given_settings, run_command
from helpers.config import SMOKE, TrainConfig, smoke


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="python -m helpers.train",
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
    """TrainConfig defaults, or the resumed checkpoint's settings, overridden by the flags given."""
    given = given_settings(args)
    if resume is None:  # the flags given win over the --smoke preset
        return replace(smoke(TrainConfig()), **given) if args.smoke else TrainConfig(**given)
    saved = dict(resume["config"])
    saved["out"] = given.pop("out", str(resume.path.parent))
    return TrainConfig.from_dict({**saved, **given})


def train(argv) -> int:
    args = build_parser().parse_args(argv)
    TrainConfig(**given_settings(args)).validate()  # bad flags are reported before torch is imported
    from helpers.checkpoint import load_checkpoint
    from helpers.device import describe, settle
    from helpers.engine import fit
    from helpers.summary import summary_line

    resume = load_checkpoint(args.resume) if args.resume is not None else None
    config, device = settle(config_from_args(args, resume))
    if device.type == "cpu" and config.subset is None:
        print(
            f"warning: no GPU in use: {config.epochs} epochs of 50,000 images take hours on a CPU "
            "(the epochs bar shows the estimate); for a quick run add --smoke",
            file=sys.stderr,
        )
    print(describe(config, device))
    history = fit(config, device, resume=resume, overwrite=args.overwrite)
    print(f"{summary_line(history)}; results in {config.out}/ (history.json, checkpoint.pt)")
    return 0


def main(argv=None) -> int:
    return run_command(train, argv)


if __name__ == "__main__":
    sys.exit(main())
