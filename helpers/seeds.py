"""`python -m helpers.seeds --seeds 1-8 [helpers.train flags]`: several seeds of the recipe at once.

At batch 64 one run leaves most of a GPU idle, so independent runs can share it: one process per seed,
all at the same time, each training to its own run folder (OUT_DIR/seedN) with helpers.train and the
flags given. Then one table: each seed's best and last test accuracy and its first epoch at 85.9%,
their mean and standard deviation, and how many seeds reached 85.9%.
"""

import os
import signal
import subprocess
import sys
from pathlib import Path

from helpers import UserError
from helpers.cli import OneLineParser, run_command
from helpers.config import MAX_SEED


def parse_seeds(text: str) -> list[int]:
    """'1-8' or '1,3,5' (or both: '1-4,9') as a list of distinct seeds."""
    seeds = []
    try:
        for part in text.split(","):
            first, _, last = part.partition("-")
            seeds += range(int(first), int(last or first) + 1)
    except ValueError:
        raise UserError(f"--seeds must look like 1-8 or 1,3,5, got {text!r}") from None
    if not seeds or len(set(seeds)) != len(seeds) or not all(0 <= seed <= MAX_SEED for seed in seeds):
        raise UserError(f"--seeds must name distinct seeds from 0 to 2**63-1, got {text!r}")
    return seeds


def run_seeds(argv) -> int:
    parser = OneLineParser(
        prog="python -m helpers.seeds",
        description=__doc__.splitlines()[0],
        allow_abbrev=False,
        epilog="Other flags go to every helpers.train run (see python -m helpers.train --help).",
    )
    parser.add_argument("--seeds", default="1-8", help="seeds to train, e.g. 1-8 or 1,3,5 [default: 1-8]")
    parser.add_argument("--out-dir", default="runs/seeds", help="one run folder per seed in here [default: runs/seeds]")
    args, train_flags = parser.parse_known_args(argv)
    if any(flag.split("=")[0] in ("--seed", "--out", "--resume") for flag in train_flags):
        raise UserError("--seed, --out and --resume are set per seed by helpers.seeds: leave them out")
    seeds = parse_seeds(args.seeds)
    from helpers.checkpoint import load_history
    from helpers.summary import report

    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    # The runs share the cores: each torch takes its share, not all of them, which would slow every
    # run several times over on a CPU.
    env = {"OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 1) // len(seeds))), **os.environ}
    runs = {}
    for seed in seeds:
        log = open(out_dir / f"seed{seed}.log", "w")
        command = [
            sys.executable,
            "-m",
            "helpers.train",
            *train_flags,
            "--no-progress",
            "--seed",
            str(seed),
            "--out",
            str(out_dir / f"seed{seed}"),
        ]
        runs[seed] = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    print(f"training seeds {args.seeds} at once; logs in {out_dir}/seedN.log", flush=True)
    try:
        statuses = {seed: run.wait() for seed, run in runs.items()}
    except KeyboardInterrupt:
        for run in runs.values():  # each run saves what it has and says so in its log
            if run.poll() is None:
                run.send_signal(signal.SIGINT)
        for run in runs.values():
            run.wait()
        raise KeyboardInterrupt(
            f"interrupted: each run folder in {out_dir} keeps its last finished epoch; "
            f"continue one with python -m helpers.train --resume {out_dir}/seedN"
        ) from None
    failed = {seed: status for seed, status in statuses.items() if status != 0}
    histories = {f"seed{seed}": load_history(out_dir / f"seed{seed}") for seed in seeds if seed not in failed}
    if histories:
        print(report(histories))
    for seed, status in failed.items():
        last_line = (out_dir / f"seed{seed}.log").read_text().strip().splitlines()[-1:] or ["(no output)"]
        print(f"seed {seed} failed (exit status {status}): {last_line[0]}", file=sys.stderr)
    return 2 if failed else 0


def main(argv=None) -> int:
    return run_command(run_seeds, argv)


if __name__ == "__main__":
    sys.exit(main())
