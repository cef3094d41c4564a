"""What we log is what TensorBoard shows: a real server over a real run, read through its HTTP data API."""

import json
import subprocess
import sys
import urllib.parse
import urllib.request

import pytest

from tests.conftest import ROOT, only_run, read_scalars, run_cli

sys.path.insert(0, str(ROOT / "scripts"))
from tensorboard_snapshots import find_chromium, get_json, tensorboard  # noqa: E402


@pytest.fixture(scope="module")
def logged_run(tmp_path_factory):
    from tests.conftest import REAL_DATA

    if not (REAL_DATA / "MNIST" / "raw").is_dir():
        pytest.skip("real MNIST not found; set DATA_DIR")
    logs = tmp_path_factory.mktemp("tb")
    common = ["--config", "configs/mnist_mlp.yaml", "--trainer.logger.init_args.save_dir", str(logs)]
    run_cli("fit", *common, "--trainer.max_epochs", "2", "--trainer.limit_train_batches", "40", data_dir=REAL_DATA)
    run_cli("test", *common, "--ckpt_path", "best", data_dir=REAL_DATA)
    return logs


def scalars(url: str, run: str, tag: str) -> list:
    query = urllib.parse.urlencode({"run": run, "tag": tag})
    return get_json(f"{url}/data/plugin/scalars/scalars?{query}")  # [[wall_time, step, value], ...]


@pytest.mark.slow
def test_tensorboard_serves_what_we_logged(logged_run):
    run_dir = only_run(logged_run / "mnist_mlp")
    run, test_run = f"mnist_mlp/{run_dir.name}", f"mnist_mlp/{run_dir.name}/test_0"
    on_disk = read_scalars(run_dir)
    with tensorboard(logged_run) as url:
        runs = get_json(f"{url}/data/runs")
        assert run in runs and test_run in runs
        tags = get_json(f"{url}/data/plugin/scalars/tags")
        assert {"train/loss", "train/acc", "val/acc", "val/loss", "val/acc_best", "hp_metric"} <= set(tags[run])
        assert {"test/acc", "test/loss", "test/samples"} <= set(tags[test_run])
        served = scalars(url, run, "val/acc")
        assert len(served) == 2  # one point per epoch
        assert [(s, round(v, 6)) for _, s, v in served] == [(s, round(v, 6)) for s, v in on_disk["val/acc"]]
        assert scalars(url, run, "hp_metric")[-1][2] == pytest.approx(max(v for _, _, v in served), abs=1e-6)
        assert scalars(url, test_run, "test/samples")[-1][2] == 10_000
        request = urllib.parse.quote(json.dumps({"experimentName": ""}))
        experiment = get_json(f"{url}/data/plugin/hparams/experiment?request={request}")
        hparams = {h["name"] for h in experiment["hparamInfos"]}
        assert {"num_params", "net", "net/hidden", "net/batchnorm", "optimizer", "optimizer/lr"} <= hparams
        assert not any(h.startswith("_") or "betas" in h for h in hparams)  # no Lightning internals, no defaults
        assert "hp_metric" in {m["name"]["tag"] for m in experiment["metricInfos"]}
        images = get_json(f"{url}/data/plugin/images/tags")[test_run]
        assert {"test/confusion_matrix", "test/misclassified", "test/filters"} <= set(images)
        query = urllib.parse.urlencode({"run": test_run, "tag": "test/confusion_matrix"})
        entry = get_json(f"{url}/data/plugin/images/images?{query}")[-1]
        with urllib.request.urlopen(f"{url}/data/plugin/images/individualImage?{entry['query']}", timeout=10) as r:
            assert r.read()[:8] == b"\x89PNG\r\n\x1a\n"  # the confusion matrix, served as a PNG


@pytest.mark.slow
def test_snapshot_script_writes_pngs(logged_run, tmp_path):
    if find_chromium() is None:
        pytest.skip("no chromium on this machine (apt-get install chromium); the snapshot script needs it")
    subprocess.run(
        [sys.executable, "scripts/tensorboard_snapshots.py", "--logdir", str(logged_run), "--out", str(tmp_path)],
        cwd=ROOT,
        check=True,
        timeout=600,
    )
    for name in ("scalars", "hparams", "images"):
        png = tmp_path / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
