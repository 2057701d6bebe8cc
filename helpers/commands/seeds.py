"""`python -m helpers seeds --seeds 1-8 [train flags]`: several seeds of the recipe, side by side.

At batch 64 one run leaves most of a GPU idle, so independent runs can share it: one process per seed,
at most --jobs at a time (the rest wait their turn), each training to its own run folder
(OUT_DIR/seedN) with `python -m helpers train` and the flags given. Then one table: each seed's best and last
test accuracy and its first epoch at 85.9%, their mean and standard deviation, and how many seeds
reached 85.9%.
"""

import fcntl
import os
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from helpers import UserError
from helpers.commands.cli import OneLineParser, last_stop_signal, run_command
from helpers.config import MAX_SEED, Settled
from helpers.machinery.checkpoint import CHECKPOINT, load_history
from helpers.machinery.files import advice, missing_folders, remove_empty

MAX_SEEDS = 1000
PER_SEED = ("--seed", "--out", "--resume")  # train flags that seeds sets itself
SEEDS_LOCK = ".seeds.lock"
GPU_JOBS = 8  # runs at once on one GPU: the eight seeds of scripts/gpu_reproduce.sh


def parse_seeds(text: str) -> list[int]:
    """'1-8' or '1,3,5' (or both: '1-4,9') as a list of at most MAX_SEEDS distinct seeds."""
    seeds = []
    try:
        for part in text.split(","):
            first, _, last = part.partition("-")
            first, last = int(first), int(last or first)
            if last - first + 1 + len(seeds) > MAX_SEEDS:
                raise UserError(f"--seeds names more than {MAX_SEEDS} seeds: {text!r}")
            seeds += range(first, last + 1)
    except ValueError:
        raise UserError(f"--seeds must look like 1-8 or 1,3,5, got {text!r}") from None
    if not seeds or len(set(seeds)) != len(seeds) or not all(0 <= seed <= MAX_SEED for seed in seeds):
        raise UserError(f"--seeds must name distinct seeds from 0 to 2**63-1, got {text!r}")
    return seeds


def default_jobs(device, seeds: int) -> int:
    """Up to GPU_JOBS runs at once on a GPU; one at a time on a CPU, where one run uses every core."""
    return min(seeds, GPU_JOBS) if device.type == "cuda" else 1


def check_train_flags(train_flags: list[str]) -> tuple[Settled, bool]:
    """The flags every run gets (--seed, --out and --resume refused before), parsed by the train command and
    checked once before any run starts (a bad one would fail each run in turn): one run's settled settings,
    and whether they --overwrite."""
    from helpers.commands.train import build_parser, config_from_args

    args = build_parser().parse_args(train_flags)
    config = config_from_args(args).validate()  # a bad flag is reported before torch is imported
    from helpers.training import settle

    return settle(config), args.overwrite


def check_folders(out_dir: Path, seeds: list[int], overwrite: bool):
    """Refuse, before any run starts or any log is written, a seed folder that is in use or holds
    anything (without --overwrite): the same checks `python -m helpers train` makes; and a log file there
    already (without --overwrite), or a log that is a link (a log is written where it is, never elsewhere)."""
    from helpers.machinery.run_folder import RunFolder

    for seed in seeds:
        folder = RunFolder(out_dir / f"seed{seed}")
        folder.open(overwrite=overwrite)
        folder.close()
        log = out_dir / f"seed{seed}.log"
        if log.is_symlink() or (log.exists() and not (overwrite and log.is_file())):
            raise UserError(f"{log} is there already: pass --overwrite (a regular file only) or another --out-dir")


def hold_out_dir(out_dir: Path):
    """Take `out_dir` (an exclusive lock, released when the returned file closes or the process ends), or
    refuse in one line while another seeds run holds it."""
    try:
        lock = open(out_dir / SEEDS_LOCK, "a+")
    except OSError as error:  # a read-only folder
        raise UserError(
            f"cannot use --out-dir {out_dir} ({error.strerror}): {advice(error, 'choose another --out-dir')}"
        ) from None
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        raise UserError(
            f"{out_dir} is in use by another seeds run: wait for it to end, or choose another --out-dir"
        ) from None
    return lock  # held while open: `with hold_out_dir(...)` releases it


def run_seeds(argv) -> int:
    parser = OneLineParser(
        prog="python -m helpers seeds",
        description=__doc__.splitlines()[0],
        allow_abbrev=False,
        epilog="Other flags go to every train run (see python -m helpers train --help).",
    )
    parser.add_argument("--seeds", default="1-8", help="seeds to train, e.g. 1-8 or 1,3,5 [default: 1-8]")
    parser.add_argument("--out-dir", default="runs/seeds", help="one run folder per seed in here [default: runs/seeds]")
    parser.add_argument("--jobs", type=int, help=f"runs at a time [default: up to {GPU_JOBS} on a GPU, 1 on a CPU]")
    args, train_flags = parser.parse_known_args(argv)
    given = [flag.split("=")[0] for flag in train_flags if flag.startswith("--") and len(flag.split("=")[0]) > 2]
    if any(name.startswith(flag) for flag in given for name in PER_SEED):  # abbreviations too: --res is --resume
        raise UserError("--seed, --out and --resume are set per seed by python -m helpers seeds: leave them out")
    seeds = parse_seeds(args.seeds)
    run, overwrite = check_train_flags(train_flags)
    if not args.out_dir.strip():
        raise UserError("--out-dir must be a folder's name, got '' (empty would be the current folder)")
    if args.jobs is not None and not 1 <= args.jobs <= len(seeds):
        raise UserError(f"--jobs must be from 1 to the number of seeds ({len(seeds)}), got {args.jobs}")
    jobs = args.jobs or default_jobs(run.device, len(seeds))
    out_dir = Path(args.out_dir)
    created = missing_folders(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(f"cannot use --out-dir {out_dir} ({error.strerror}): choose another --out-dir") from None
    held = {path.name for path in out_dir.iterdir()}
    try:
        with hold_out_dir(out_dir):  # one seeds run at a time in a folder: their logs would clobber each other
            check_folders(out_dir, seeds, overwrite)
            return train_seeds(args.seeds, seeds, train_flags, jobs, out_dir)
    finally:  # refused, or stopped before any run saved anything: the lock and the folders this command made go
        if SEEDS_LOCK not in held and {path.name for path in out_dir.iterdir()} - held == {SEEDS_LOCK}:
            (out_dir / SEEDS_LOCK).unlink()
            remove_empty(created)


def train_seeds(named: str, seeds: list[int], train_flags: list[str], jobs: int, out_dir: Path) -> int:
    """Train each seed with the train command, at most `jobs` at a time; print the table; 2 if any failed."""
    from helpers.commands.summary import report

    # The runs share the cores: each torch takes its share, not all of them, which would slow every
    # run several times over on a CPU. Unbuffered, so that each log shows its run as it goes.
    env = {"OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 1) // jobs)), **os.environ, "PYTHONUNBUFFERED": "1"}
    running, stopping, lock = {}, threading.Event(), threading.Lock()

    def train(seed):
        with lock:
            if stopping.is_set():
                return None
            flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW  # never through a link
            log = os.fdopen(os.open(out_dir / f"seed{seed}.log", flags, 0o644), "w")
            command = [sys.executable, "-m", "helpers", "train", *train_flags, "--no-progress",
                       "--seed", str(seed), "--out", str(out_dir / f"seed{seed}")]  # fmt: skip
            running[seed] = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        with log:
            return running[seed].wait()

    print(f"training seeds {named}, {jobs} at a time; logs in {out_dir}/seedN.log", flush=True)
    pool = ThreadPoolExecutor(max_workers=jobs)
    try:
        statuses = dict(zip(seeds, pool.map(train, seeds), strict=True))
    except KeyboardInterrupt:  # Ctrl-C, SIGTERM or SIGHUP: pass it on; each run saves what it has and says so
        with lock:
            stopping.set()
            for run in running.values():
                if run.poll() is None:
                    run.send_signal(last_stop_signal())
        pool.shutdown(cancel_futures=True)
        raise KeyboardInterrupt(interrupted(out_dir, seeds, started=list(running))) from None
    pool.shutdown()
    failed = {seed: status for seed, status in statuses.items() if status != 0}
    histories = {f"seed{seed}": load_history(out_dir / f"seed{seed}") for seed in seeds if seed not in failed}
    if histories:
        print(report(histories))
    for seed, status in failed.items():
        last_line = (out_dir / f"seed{seed}.log").read_text().strip().splitlines()[-1:] or ["(no output)"]
        print(f"seed {seed} failed (exit status {status}): {last_line[0]}", file=sys.stderr)
    return 2 if failed else 0


def interrupted(out_dir: Path, seeds: list[int], started: list[int]) -> str:
    """What an interrupted seeds run kept, in one line. A run that saved nothing leaves nothing, its log
    included, so that the same command starts it again."""
    saved = [seed for seed in seeds if (out_dir / f"seed{seed}" / CHECKPOINT).exists()]
    for seed in set(started) - set(saved):
        (out_dir / f"seed{seed}.log").unlink(missing_ok=True)
    if not saved:
        return "interrupted before any run finished an epoch: nothing was saved; start again with the same command"
    from helpers.analysis import finished_history  # what decides "finished" for notebook 5 decides it here too

    finished = [seed for seed in saved if finished_history(out_dir / f"seed{seed}") is not None]
    unfinished = [seed for seed in saved if seed not in finished]
    unsaved = [str(seed) for seed in seeds if seed not in saved]
    said = []
    if finished:
        folders = " ".join(f"{out_dir}/seed{seed}" for seed in finished)
        said.append(f"{folders} finished (their table: python -m helpers summary {folders})")
    if len(unfinished) == 1:
        folder = f"{out_dir}/seed{unfinished[0]}"
        said.append(
            f"{folder} keeps its last finished epoch: continue it with python -m helpers train --resume {folder}"
        )
    elif unfinished:
        said.append(
            f"{', '.join(f'{out_dir}/seed{seed}' for seed in unfinished)} keep their last finished epoch: continue "
            f"each with python -m helpers train --resume {out_dir}/seedN (N: {', '.join(map(str, unfinished))})"
        )
    if unsaved:
        said.append(f"seed{'s' * (len(unsaved) > 1)} {', '.join(unsaved)} saved nothing")
    return "interrupted: " + "; ".join(said)


def main(argv=None) -> int:
    return run_command(run_seeds, argv)
