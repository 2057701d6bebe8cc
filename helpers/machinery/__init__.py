"""The bottom floor: what keeps runs safe, under the lesson. It imports nothing from the floors above, except the
recipe's settings type (helpers.config.TrainConfig, Settled) that it reads and writes.

- hardware.py     the device, checked against what torch sees; its name; the precision it runs fastest in
- cpu_dropout.py  Dropout with a faster mask on the CPU, swapped into a model that trains there
- static_step.py  the training step in the form a CUDA graph captures (the GPU work on CUDA graphs and its tests)
- run_folder.py   a run folder and its history: lock, start or resume, one committed epoch at a time; whether a
                  saved run is finished, unfinished or of other settings
- checkpoint.py   checkpoint.pt and history.json read back, checked, parsed once, restored
- files.py        safe writes: temporary file, fsync, rename
- download.py     CIFAR-10 from a mirror, used only once it equals the official arrays
"""
