"""Command line: `python -m helpers.train [--epochs N ...]` runs the published recipe (see --help)."""
import argparse
import sys
from dataclasses import fields
from typing import get_args

from helpers import UserError
from helpers.checkpoint import CHECKPOINT, HISTORY, checkpoint_path, load_checkpoint
from helpers.config import TrainConfig


class OneLineParser(argparse.ArgumentParser):
    def error(self, message):
        self.exit(2, f"error: {message} (see --help)\n")


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
        if spec.type in (bool, "bool"):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, help=help_text)
        else:
            kinds = [kind for kind in get_args(spec.type) or [spec.type] if kind is not type(None)]
            parser.add_argument(flag, type=kinds[0], help=help_text)
    parser.add_argument("--resume", metavar="RUN", help="continue the run in this folder (or checkpoint.pt); "
                        "its settings are kept, and --out defaults to its folder")
    parser.add_argument("--overwrite", action="store_true", default=False, help="replace a run already in --out")
    return parser


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """TrainConfig defaults, or the resumed run's settings, overridden by the flags given."""
    given = {k: v for k, v in vars(args).items() if k not in ("resume", "overwrite")}
    if "resume" not in args:
        return TrainConfig(**given)
    saved = load_checkpoint(args.resume)["config"]
    saved["out"] = given.pop("out", str(checkpoint_path(args.resume).parent))
    return TrainConfig.from_dict({**saved, **given})


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = config_from_args(args).validate()
        from helpers.engine import fit, resolve_device  # torch import after --help and arg errors

        if resolve_device(config.device).type == "cpu" and config.subset is None:
            print(f"warning: no GPU in use: {config.epochs} epochs of 50,000 images take hours on a CPU "
                  "(the epochs bar shows the estimate); for a quick run add --epochs 2 --subset 5000",
                  file=sys.stderr)
        history = fit(config, resume=getattr(args, "resume", None), overwrite=args.overwrite)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\ninterrupted: continue with --resume {config.out}", file=sys.stderr)
        return 130
    best = max(history, key=lambda record: record["test_acc"])
    last = history[-1]
    print(f"best test accuracy {best['test_acc']:.2%} (epoch {best['epoch']}), last {last['test_acc']:.2%} "
          f"(epoch {last['epoch']}); results in {config.out}/ ({HISTORY}, {CHECKPOINT})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
