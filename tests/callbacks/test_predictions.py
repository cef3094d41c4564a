"""`predict` writes predictions a person can read; a trained model classifies raw images without the data module."""

import csv

import torch
from PIL import Image

from src.data.mnist import MNISTDataModule
from src.models.classifier import ImageClassifier
from tests.conftest import REAL_DATA, read_scalars, run_cli


def rows(path) -> list[dict]:
    return list(csv.DictReader(open(path)))


def logs(save_dir) -> list[str]:
    return ["--trainer.logger.init_args.save_dir", str(save_dir)]


def test_end_of_fit_names_the_run_the_best_checkpoint_and_what_to_run_next(short_mlp_run):
    save_dir, run, stdout = short_mlp_run
    best = next((run / "checkpoints").glob("epoch*.ckpt"))
    val_acc = read_scalars(run)["val/acc"][-1][1]
    assert f"run:   {run}" in stdout
    assert f"best:  {best} (epoch 0, val/acc {val_acc:.4f})" in stdout
    assert (
        f"test:  python -m src.cli test --config configs/mnist_mlp.yaml --trainer.logger.init_args.save_dir "
        f"{save_dir} --ckpt_path best"
    ) in stdout


def test_predict_csv_scores_like_test_and_user_images_like_tensors(short_mlp_run, tmp_path):
    """predict on the test split: 10,000 ordered rows whose accuracy is test/acc of the same checkpoint. Then 20
    of those images as PNG files -- every other one RGB, every third twice the size -- predicted from a folder:
    the same classes as from the tensors."""
    save_dir, run, _ = short_mlp_run
    proc = run_cli(
        "predict", "--config", "configs/mnist_mlp.yaml", "--ckpt_path", "best", *logs(save_dir), data_dir=REAL_DATA
    )
    table = rows(run / "predict_0" / "predictions.csv")
    assert f"predictions: {run / 'predict_0' / 'predictions.csv'} (10000 images)" in proc.stderr
    assert [int(r["index"]) for r in table] == list(range(10_000))
    run_cli("test", "--config", "configs/mnist_mlp.yaml", "--ckpt_path", "best", *logs(save_dir), data_dir=REAL_DATA)
    test_acc = read_scalars(run / "test_0")["test/acc"][-1][1]
    assert abs(sum(r["label"] == r["predicted"] for r in table) / 10_000 - test_acc) < 1e-6
    assert all(r["top3"].startswith(f"{r['predicted']} (") for r in table)

    images, _ = MNISTDataModule(data_dir=str(REAL_DATA)).read_split(train=False)
    folder = tmp_path / "mine"
    folder.mkdir()
    for i in range(20):
        img = Image.fromarray(images[i, 0].numpy())
        img = img.convert("RGB") if i % 2 else img
        img = img.resize((56, 56), Image.NEAREST) if i % 3 == 0 else img
        img.save(folder / f"digit_{i:02d}.png")
    run_cli(
        "predict",
        "--config",
        "configs/mnist_mlp.yaml",
        "--ckpt_path",
        "best",
        *logs(save_dir),
        "--data.init_args.predict_path",
        str(folder),
        data_dir=REAL_DATA,
    )
    mine = rows(run / "predict_1" / "predictions.csv")
    assert [r["file"] for r in mine] == [f"digit_{i:02d}.png" for i in range(20)]
    assert [r["predicted"] for r in mine] == [r["predicted"] for r in table[:20]]
    assert all(r["label"] == "" for r in mine)


def test_load_from_checkpoint_and_raw_images_give_the_test_path_predictions(short_mlp_run):
    """Three lines, no data module, no constants: the counts per (true, predicted) class equal the CLI test
    report's confusion matrix cell by cell."""
    save_dir, run, _ = short_mlp_run
    run_cli("test", "--config", "configs/mnist_mlp.yaml", "--ckpt_path", "best", *logs(save_dir), data_dir=REAL_DATA)
    report = sorted(run.glob("test_*"))[-1] / "test_report" / "confusion_matrix.csv"
    confmat = torch.tensor([[int(v) for v in r[1:]] for r in list(csv.reader(open(report)))[1:]])

    model = ImageClassifier.load_from_checkpoint(next((run / "checkpoints").glob("epoch*.ckpt")))
    images, labels = MNISTDataModule(data_dir=str(REAL_DATA)).read_split(train=False)  # raw uint8 [N, 1, 28, 28]
    preds = model.predict_images(images).argmax(dim=1)
    counted = torch.zeros(10, 10, dtype=torch.long).index_put_((labels, preds), torch.tensor(1), accumulate=True)
    assert torch.equal(counted, confmat) and model.classes == [str(d) for d in range(10)]


def test_predict_bad_input_is_one_line_and_writes_nothing(short_mlp_run, tmp_path):
    save_dir, run, _ = short_mlp_run
    before = sorted(p.name for p in run.iterdir())
    empty = tmp_path / "empty"
    empty.mkdir()
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "0.png").write_bytes(b"\x89PNG not really")
    cases = {
        (): "predict needs a trained model: add --ckpt_path best, last or a .ckpt file",
        ("--ckpt_path", "best", "--data.init_args.predict_path", str(empty)): f"no PNG or JPEG images in {empty}",
        (
            "--ckpt_path",
            "best",
            "--data.init_args.predict_path",
            str(broken),
        ): f"cannot read the image {broken / '0.png'}",
    }
    for args, message in cases.items():
        proc = run_cli(
            "predict", "--config", "configs/mnist_mlp.yaml", *logs(save_dir), *args, data_dir=REAL_DATA, check=False
        )
        assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1].startswith(f"error: {message}"), (
            proc.stderr
        )
        assert "Traceback" not in proc.stderr
    assert sorted(p.name for p in run.iterdir()) == before
