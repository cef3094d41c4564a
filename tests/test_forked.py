"""src/forked.py: `python -m` in a process forked from a server that imported the CLI, against a new interpreter."""

import json
import subprocess
import sys

from src import forked
from tests.conftest import ROOT, run_cli


def test_a_forked_command_prints_and_exits_as_a_new_interpreter(tmp_path):
    args = [
        "test",
        "--config",
        "configs/mnist_mlp.yaml",
        "--ckpt_path",
        "best",
        "--trainer.logger.init_args.save_dir",
        str(tmp_path),
    ]
    fresh = subprocess.run(
        [sys.executable, "-m", "src.cli", *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    fork = run_cli(*args, check=False)  # through forked.start
    assert fresh.returncode == 2 and "error: no trained run with checkpoints" in fresh.stderr
    assert (fork.returncode, fork.stdout, fork.stderr) == (fresh.returncode, fresh.stdout, fresh.stderr)


def test_a_forked_process_takes_its_environment_threads_and_command_line(tmp_path, monkeypatch):
    (tmp_path / "probe.py").write_text(
        "import json, os, sys, torch\n"
        "print(json.dumps([dict(os.environ), torch.get_num_threads(), sys.argv, __name__, "
        "__spec__.name, os.getcwd()]))\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    proc = forked.start("probe", ["a", "b"], {"PROBE": "yes", "OMP_NUM_THREADS": "1"}, str(tmp_path / "out"))
    proc.join(60)
    assert proc.exitcode == 0
    assert json.loads((tmp_path / "out").read_text()) == [
        {"PROBE": "yes", "OMP_NUM_THREADS": "1"},
        1,
        [str(tmp_path / "probe.py"), "a", "b"],
        "__main__",
        "probe",
        str(tmp_path),
    ]


def test_a_forked_process_ends_when_the_process_that_started_the_server_is_killed(tmp_path):
    """A sweep killed with SIGKILL takes its fork server with it; the trial it had started must not train on as an
    orphan. Here a parent process starts the server and a child that sleeps, then is SIGKILLed."""
    import os
    import signal
    import time

    script = tmp_path / "parent.py"
    script.write_text(
        "import sys, time\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "from src import forked\n"
        "if __name__ == '__main__':  # the fork server imports this file too\n"
        f"    p = forked.start('time_sleeper', [], {{'PYTHONPATH': {str(tmp_path)!r}}}, {str(tmp_path / 'out')!r})\n"
        f"    open({str(tmp_path / 'pid')!r}, 'w').write(str(p.pid))\n"
        "    time.sleep(600)\n"
    )
    (tmp_path / "time_sleeper.py").write_text("import time\ntime.sleep(600)\n")
    parent = subprocess.Popen(
        [sys.executable, str(script)], cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(tmp_path)}
    )
    deadline = time.time() + 120
    while not (tmp_path / "pid").exists() and time.time() < deadline:
        time.sleep(0.2)
    child = int((tmp_path / "pid").read_text())
    os.kill(child, 0)  # running
    parent.send_signal(signal.SIGKILL)
    parent.wait(30)
    deadline = time.time() + 30
    while (
        time.time() < deadline
        and os.path.exists(f"/proc/{child}")
        and "Z" not in open(f"/proc/{child}/stat").read().split()[2]
    ):
        time.sleep(0.2)
    assert not os.path.exists(f"/proc/{child}") or open(f"/proc/{child}/stat").read().split()[2] == "Z"
