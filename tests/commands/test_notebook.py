"""The notebooks' setup(): Colab gets only what it lacks, and errors show as one line."""

from pathlib import Path

from IPython.core.interactiveshell import InteractiveShell

from helpers import UserError
from helpers.commands.notebook import missing_packages, pip_install, setup, show_errors_in_one_line


def test_colab_installs_only_what_it_lacks_and_holds_its_torch():
    pins = {"albumentations": "2.0.8", "torchsummary": "1.5.1", "captum": "0.9.0"}
    colab = {
        "albumentations": "1.4.20",
        "torchsummary": None,
        "captum": "0.9.0",
        "torch": "2.9.0+cu126",
        "torchvision": "0.24.0",
    }
    needed = missing_packages(pins, installed=colab.get)
    assert needed == ["albumentations==2.0.8", "torchsummary==1.5.1"]
    command = pip_install(needed, installed=colab.get)
    assert not any(part.startswith(("torch==", "torchvision==")) for part in command)
    held = Path(command[command.index("--constraint") + 1]).read_text().split()
    assert held == ["torch==2.9.0+cu126", "torchvision==0.24.0"]


def test_a_user_error_in_a_notebook_is_one_line(capsys):
    shell = InteractiveShell()
    show_errors_in_one_line(shell)
    shell.user_ns["UserError"] = UserError
    shell.run_cell("raise UserError('cannot read checkpoint x: pass a run folder')")
    shell.run_cell(
        "raise KeyboardInterrupt('interrupted: runs/x/checkpoint.pt holds epoch 3; continue with --resume runs/x')"
    )
    shell.run_cell("lr_test = lr_range_test(run, data)")  # a cell run before the one that defines its names
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [
        "error: cannot read checkpoint x: pass a run folder",
        "interrupted: runs/x/checkpoint.pt holds epoch 3; continue with --resume runs/x",
        "error: name 'lr_range_test' is not defined: run the cells above this one first (Run > Run All Above Selected Cell)",
    ]
    assert "Traceback" not in captured.out + captured.err
    shell.run_cell("exec('a_name_inside_library_code', {})")  # not the notebook's own names: the whole traceback
    assert "Traceback" in "".join(capsys.readouterr())


def test_the_set_up_line_names_the_arrays_a_mirror_download_kept(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CIFAR10_ROOT", str(tmp_path))
    (tmp_path / "cifar-10-mirror.npz").write_bytes(b"")  # only there: setup() does not read it
    setup()
    assert capsys.readouterr().out == "local: CIFAR-10 from $CIFAR10_ROOT (the arrays a checked mirror download kept)\n"
    (tmp_path / "cifar-10-mirror.npz").unlink()
    setup()
    assert "will be downloaded into $CIFAR10_ROOT on first use" in capsys.readouterr().out
