"""Command line: `python -m helpers.train [--epochs N ...]` runs the published recipe (see --help)."""
import argparse
import sys
from dataclasses import fields
from typing import get_args

from helpers.cli import OneLineParser, run_command
from helpers.config import SMOKE, TrainConfig, smoke


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="python -m helpers.train",
        description="Train the 84,904-parameter CIFAR-10 CNN with the published recipe; "
        "every flag overrides one setting of helpers.config.TrainConfig.",
        argument_default=argparse.SUPPRESS,  # only flags given on the command line override
    )
    for spec in fields(TrainConfig):
        flag = "--" + spec.name.replace("_", "-")
        help_text = f"{spec.metadata['help']} [default: {spec.default}]"
        if spec.type is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, help=help_text)
        else:
            kinds = [kind for kind in get_args(spec.type) or [spec.type] if kind is not type(None)]
            parser.add_argument(flag, type=kinds[0], help=help_text)
    parser.add_argument("--smoke", action="store_true", default=False,
                        help=f"a dry run in seconds: {', '.join(f'{k}={v}' for k, v in SMOKE.items())}")
    parser.add_argument("--resume", metavar="RUN", help="continue the run in this folder (or checkpoint.pt); "
                        "its settings are kept, and --out defaults to its folder")
    parser.add_argument("--overwrite", action="store_true", default=False, help="replace a run already in --out")
    return parser


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """TrainConfig defaults, or the resumed run's settings, overridden by the flags given."""
    given = {k: v for k, v in vars(args).items() if k not in ("resume", "overwrite", "smoke")}
    if "resume" not in args:
        config = TrainConfig(**given)
        return smoke(config) if args.smoke else config
    from helpers.checkpoint import checkpoint_path, load_checkpoint

    saved = load_checkpoint(args.resume)["config"]
    saved["out"] = given.pop("out", str(checkpoint_path(args.resume).parent))
    return TrainConfig.from_dict({**saved, **given})


def train(argv) -> int:
    args = build_parser().parse_args(argv)
    config = config_from_args(args).validate()
    from helpers.device import for_device, resolve_device
    from helpers.engine import fit
    from helpers.summary import summary_line

    device = resolve_device(config.device)
    if device.type == "cpu" and config.subset is None:
        print(f"warning: no GPU in use: {config.epochs} epochs of 50,000 images take hours on a CPU "
              "(the epochs bar shows the estimate); for a quick run add --smoke", file=sys.stderr)
    settled = for_device(config, device)
    print(f"training on {device.type} with the {settled.pipeline} pipeline in {settled.precision}")
    history = fit(config, resume=getattr(args, "resume", None), overwrite=args.overwrite)
    print(f"{summary_line(history)}; results in {config.out}/ (history.json, checkpoint.pt)")
    return 0


def main(argv=None) -> int:
    return run_command(train, argv)


if __name__ == "__main__":
    sys.exit(main())
