"""`python -m helpers COMMAND [flags]`: the project's commands, each with its own --help."""

import sys
from importlib import import_module

COMMANDS = {  # name: (module in helpers.commands, what it does)
    "train": ("train", "train the network with the published recipe"),
    "bench": ("bench", "images/s of both data pipelines on one device"),
    "seeds": ("seeds", "several seeds of the recipe, side by side"),
    "summary": ("summary", "the results table of saved runs"),
    "colab-links": ("colab_links", "write each notebook's Colab badge and set-up cell"),
}
USAGE = "usage: python -m helpers {" + ",".join(COMMANDS) + "} [flags]   (python -m helpers COMMAND --help)"


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE + "\n\n" + "\n".join(f"  {name:<12} {text}" for name, (_, text) in COMMANDS.items()))
        return 0 if argv else 2
    if argv[0] not in COMMANDS:
        print(f"error: unknown command {argv[0]!r}: use one of {', '.join(COMMANDS)} (see --help)", file=sys.stderr)
        return 2
    return import_module(f"helpers.commands.{COMMANDS[argv[0]][0]}").main(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
