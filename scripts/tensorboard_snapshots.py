"""PNG screenshots of TensorBoard's dashboards for a log directory, taken in headless Chromium.

    python scripts/tensorboard_snapshots.py --logdir lightning_logs --out scripts/results/tensorboard

Starts TensorBoard on a free loopback port, waits until it lists the runs, saves scalars.png,
hparams.png and images.png (Debian's `chromium`; nothing is downloaded), and always stops the server.
"""

import argparse
import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

DASHBOARDS = {"scalars": "#timeseries", "hparams": "#hparams", "images": "#images"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url: str):
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


@contextmanager
def tensorboard(logdir: Path, timeout: float = 90.0):
    """Yields the base URL of a TensorBoard serving logdir once it lists every run (every folder holding an
    event file: TensorBoard loads them one by one); stops it after."""
    expected = {str(p.parent.relative_to(logdir)) for p in Path(logdir).rglob("events.out.tfevents.*")}
    port = free_port()
    program = Path(sys.executable).parent / "tensorboard"
    proc = subprocess.Popen(
        [str(program), "--logdir", str(logdir), "--host", "127.0.0.1", "--port", str(port), "--reload_interval", "1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + timeout
        while True:
            try:
                runs = get_json(f"{url}/data/runs")
                if runs and expected <= set(runs):
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                raise RuntimeError(
                    f"TensorBoard did not serve {logdir} within {timeout:.0f} s: "
                    f"{proc.stderr.read().decode()[-500:] if proc.poll() is not None else 'still loading'}"
                )
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def find_chromium() -> str | None:
    return next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)


def screenshot(chromium: str, url: str, png: Path) -> None:
    # virtual-time-budget lets the single-page app fetch and draw its data before the picture is taken.
    subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--window-size=1600,1000",
            "--virtual-time-budget=15000",
            f"--screenshot={png}",
            url,
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--logdir", default="lightning_logs")
    parser.add_argument("--out", default="scripts/results/tensorboard")
    args = parser.parse_args()
    chromium = find_chromium()
    if chromium is None:
        sys.exit("error: no chromium found; install Debian's: apt-get install chromium")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tensorboard(Path(args.logdir)) as url:
        for name, fragment in DASHBOARDS.items():
            screenshot(chromium, f"{url}/{fragment}", out / f"{name}.png")
            print(out / f"{name}.png")


if __name__ == "__main__":
    main()
