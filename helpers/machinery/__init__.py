"""The machinery behind the lessons, which keeps runs safe and the commands honest. A notebook reaches it through a
few names: `setup()` (its first cell), `load_checkpoint` / `load_history` (a saved run, checked; notebook 5) and
`estimate` (notebook 4's time estimate); the lessons' modules through the Trainer, the checkpoint readers, the run
folder, the download and its file helpers, the hardware checks (device, its name, its precision) and the model's
Dropout.

- hardware.py     the device, checked against what torch sees; its name; the precision it runs fastest in
- trainer.py      Trainer: a model on a device in its precision, memory format and compilation; predictions
- static_step.py  the training step a CUDA graph will capture (used by the GPU work on CUDA graphs and its tests)
- cpu_dropout.py  the model's Dropout, with a faster mask on the CPU
- run_folder.py   a run folder and its history: lock, start or resume, one committed epoch at a time
- checkpoint.py   checkpoint.pt and history.json read back, checked, parsed once, restored
- files.py        safe writes: temporary file, fsync, rename
- download.py     CIFAR-10 from a mirror, used only once it equals the official arrays
- cli.py          what the commands share: flags made from TrainConfig, one-line errors, Ctrl-C and signals
- train.py, bench.py, seeds.py, summary.py, colab_links.py: the commands (`python -m helpers COMMAND`)
- notebook.py     setup(), called by each notebook's first cell
"""

from helpers.machinery.notebook import setup  # the notebooks' first cell: short to type

__all__ = ["setup"]
