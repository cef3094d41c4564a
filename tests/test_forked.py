"""src/forked.py: `python -m` in a process forked from a server that imported the CLI, against a new interpreter."""

import json
import subprocess
import sys

from src import forked
from tests.conftest import ROOT, run_cli


def test_a_forked_command_prints_and_exits_as_a_new_interpreter(tmp_path):
    args = ["test", "--config", "configs/mnist_mlp.yaml", "--ckpt_path", "best", "--trainer.logger.init_args.save_dir",
            str(tmp_path)]
    fresh = subprocess.run([sys.executable, "-m", "src.cli", *args], cwd=ROOT, capture_output=True, text=True, timeout=300)
    fork = run_cli(*args, check=False)  # through forked.start
    assert fresh.returncode == 2 and "error: no trained run with checkpoints" in fresh.stderr
    assert (fork.returncode, fork.stdout, fork.stderr) == (fresh.returncode, fresh.stdout, fresh.stderr)


def test_a_forked_process_takes_its_environment_threads_and_command_line(tmp_path, monkeypatch):
    (tmp_path / "probe.py").write_text("import json, os, sys, torch\n"
                                       "print(json.dumps([dict(os.environ), torch.get_num_threads(), sys.argv, __name__, "
                                       "__spec__.name, os.getcwd()]))\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    proc = forked.start("probe", ["a", "b"], {"PROBE": "yes", "OMP_NUM_THREADS": "1"}, str(tmp_path / "out"))
    proc.join(60)
    assert proc.exitcode == 0
    assert json.loads((tmp_path / "out").read_text()) == [{"PROBE": "yes", "OMP_NUM_THREADS": "1"}, 1,
                                                          [str(tmp_path / "probe.py"), "a", "b"], "__main__", "probe",
                                                          str(tmp_path)]
