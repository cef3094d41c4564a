"""ImageFolderDataModule: the same tensors and the same accuracy as the IDX module on the same real images, a cache
that is read instead of the files, RGB and odd sizes, and every bad folder as one line that changes nothing."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from src.data import folder
from src.data.folder import ImageFolderDataModule
from src.data.mnist import FashionMNISTDataModule
from src.errors import UsageError
from tests.conftest import only_run, read_scalars, run_cli, write_idx, write_image_folder


def listing(root: Path) -> list[tuple[str, int, int]]:
    return sorted((str(p.relative_to(root)), p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*"))


@pytest.fixture(scope="module")
def fashion_folder(tmp_path_factory):
    """A stratified real Fashion-MNIST subset (600 train and 100 test images per class) twice: as PNG files in the
    ImageFolder layout and as IDX files holding the same images in the order the folder module reads them."""
    from tests.conftest import real_data

    data = real_data("FashionMNIST")
    tmp = tmp_path_factory.mktemp("fashion_folder")
    dm = FashionMNISTDataModule(data_dir=str(data))
    classes = [f"{i}_{name.replace('/', '-')}" for i, name in enumerate(dm.classes)]  # sorted as the labels are
    for split, train, per_class in (("train", True, 600), ("test", False, 100)):
        x, y = dm.read_split(train)
        picked = torch.cat([(y == c).nonzero().flatten()[:per_class] for c in range(10)])  # class by class, as sorted
        write_image_folder(tmp / "images", split, x[picked, 0].numpy(), y[picked].tolist(), classes)
        raw = tmp / "idx" / "FashionMNIST" / "raw"
        raw.mkdir(parents=True, exist_ok=True)
        prefix = "train" if train else "t10k"
        write_idx(raw / f"{prefix}-images-idx3-ubyte", x[picked, 0].numpy())
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", y[picked].numpy())
    return tmp


def test_folder_and_idx_modules_hold_the_same_tensors(fashion_folder, tmp_path):
    folder = ImageFolderDataModule(
        root=str(fashion_folder / "images"), channels=1, val_size=500, seed=3, cache_dir=str(tmp_path / "cache")
    )
    idx = FashionMNISTDataModule(data_dir=str(fashion_folder / "idx"), val_size=500, seed=3)
    for dm in (folder, idx):
        dm.setup("fit")
    assert folder.in_shape == (1, 28, 28) and folder.num_classes == 10 and folder.classes[9] == "9_Ankle boot"
    assert torch.equal(folder.mean, idx.mean) and torch.equal(folder.std, idx.std)
    for split in ("train", "val", "test"):
        assert torch.equal(folder.splits[split].images, idx.splits[split].images), split
        assert torch.equal(folder.splits[split].labels, idx.splits[split].labels), split


@pytest.mark.slow
def test_the_same_recipe_scores_the_same_through_both_modules(fashion_folder, tmp_path):
    """fashion_mnist_mlp's recipe, 3 epochs, seed 0, fit + test --ckpt_path best: the pipelines are bit-identical,
    so the test accuracy is equal exactly, and it is a real one (the 1,000 real test images)."""
    common = ["--trainer.max_epochs", "3", "--data.init_args.val_size", "500"]
    scores = []
    for name, data in (
        (
            "folder",
            [
                "--data",
                "src.data.folder.ImageFolderDataModule",
                "--data.init_args.root",
                str(fashion_folder / "images"),
                "--data.init_args.channels",
                "1",
                "--data.init_args.cache_dir",
                str(tmp_path / "cache"),
            ],
        ),
        ("idx", ["--data.init_args.data_dir", str(fashion_folder / "idx")]),
    ):
        logs = ["--trainer.logger.init_args.save_dir", str(tmp_path / name)]
        args = ["--config", "configs/fashion_mnist_mlp.yaml", *data, *common, *logs]
        run_cli("fit", *args)
        run_cli("test", *args, "--ckpt_path", "best")
        run = only_run(tmp_path / name / "fashion_mnist_mlp")
        scores.append(read_scalars(next(run.glob("test_*")))["test/acc"][-1][1])
    assert scores[0] == scores[1] and scores[0] > 0.80, scores


def test_a_second_setup_reads_the_cache_not_the_files(fashion_folder, tmp_path, monkeypatch):
    root, cache = fashion_folder / "images", tmp_path / "cache"
    first = ImageFolderDataModule(root=str(root), channels=1, cache_dir=str(cache))
    first.setup("fit")
    assert len(list(cache.glob("*.pt"))) == 2 and not list(cache.glob("*.tmp"))  # train and test, no temporary file
    decoded = []
    real = folder.decode_all
    monkeypatch.setattr(folder, "decode_all", lambda files, *a: decoded.append(len(files)) or real(files, *a))
    second = ImageFolderDataModule(root=str(root), channels=1, cache_dir=str(cache))
    second.setup("fit")
    assert decoded == [] and torch.equal(first.splits["train"].images, second.splits["train"].images)
    rgb = ImageFolderDataModule(root=str(root), channels=3, cache_dir=str(cache))  # another setting: another entry
    rgb.setup("fit")
    assert decoded == [6000, 1000] and rgb.splits["train"].images.shape[1:] == (3, 28, 28)


def test_a_changed_file_is_decoded_again(tmp_path):
    rng = np.random.default_rng(0)
    write_image_folder(
        tmp_path / "d", "train", rng.integers(0, 256, (6, 8, 8), dtype=np.uint8), [0, 0, 0, 1, 1, 1], ["a", "b"]
    )

    def make():
        return ImageFolderDataModule(root=str(tmp_path / "d"), channels=1, cache_dir=str(tmp_path / "c"), val_size=1)

    before = make()
    before.setup("fit")
    Image.fromarray(np.full((8, 8), 255, np.uint8)).save(tmp_path / "d" / "train" / "a" / "00000.png")  # same name
    after = make()
    after.setup("fit")
    assert len(list((tmp_path / "c").glob("*.pt"))) == 2  # the old entry and the new (one: no test/, one decode)
    seen = torch.cat([after.splits[s].images for s in ("train", "val", "test")])
    assert (seen.flatten(1) == seen.flatten(1).max()).all(dim=1).any()  # the all-white image is there


def test_without_test_folder_a_stratified_test_split_is_carved_and_recorded(tmp_path):
    rng = np.random.default_rng(1)
    labels = [0] * 40 + [1] * 20
    write_image_folder(
        tmp_path / "d", "train", rng.integers(0, 256, (60, 6, 6), dtype=np.uint8), labels, ["cat", "dog"]
    )
    dms = [
        ImageFolderDataModule(
            root=str(tmp_path / "d"), channels=1, test_size=0.25, val_size=5, seed=s, cache_dir=str(tmp_path / "c")
        )
        for s in (0, 0, 1)
    ]
    for dm in dms:
        dm.setup("fit")
    test = dms[0].splits["test"].labels
    assert torch.bincount(test).tolist() == [10, 5]  # a quarter of each class
    assert len(dms[0].splits["train"]) + len(dms[0].splits["val"]) == 45
    carved = dms[0].state_dict()["carved_test"]
    assert len(carved) == 15 and all(c.startswith("train/") for c in carved)
    assert carved == dms[1].state_dict()["carved_test"] != dms[2].state_dict()["carved_test"]  # the seed's alone


@pytest.mark.slow
def test_rgb_images_of_an_odd_size_train_the_small_cnn(tmp_path):
    """3x40x30 colour images resized to 32x32: each class is one dominant colour, which the CNN must learn."""
    rng = np.random.default_rng(2)
    images = rng.integers(0, 90, (300, 40, 30, 3), dtype=np.uint8)
    labels = [i % 3 for i in range(300)]
    for x, y in zip(images, labels):
        x[..., y] += 150
    write_image_folder(tmp_path / "d", "train", images[:240], labels[:240], ["red", "green", "blue"])
    write_image_folder(tmp_path / "d", "test", images[240:], labels[240:], ["red", "green", "blue"])
    logs = ["--trainer.logger.init_args.save_dir", str(tmp_path / "logs")]
    args = [
        "--config",
        "configs/folder_cnn.yaml",
        "--data.init_args.root",
        str(tmp_path / "d"),
        "--data.init_args.image_size",
        "[32, 32]",
        "--data.init_args.val_size",
        "40",
        "--data.init_args.batch_size",
        "32",
        "--trainer.max_epochs",
        "3",
        "--data.init_args.cache_dir",
        str(tmp_path / "c"),
        *logs,
    ]
    run_cli("fit", *args)
    run_cli("test", *args, "--ckpt_path", "best")
    run = only_run(tmp_path / "logs" / "folder_cnn")
    assert read_scalars(next(run.glob("test_*")))["test/acc"][-1][1] >= 0.95
    checkpoint = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert checkpoint["inference"]["in_shape"] == [3, 32, 32] and checkpoint["inference"]["classes"] == [
        "blue",
        "green",
        "red",
    ]


def bad_folder(root: Path, case: str) -> list[str]:
    """A folder with one defect; -> the extra command-line arguments the case needs."""
    rng = np.random.default_rng(3)
    grey = lambda n, h=8, w=8: rng.integers(0, 256, (n, h, w), dtype=np.uint8)  # noqa: E731
    if case == "no class folders":
        (root / "train").mkdir(parents=True)
        (root / "train" / "notes.txt").write_text("not an image")
        return []
    write_image_folder(root, "train", grey(4), [0, 0, 1, 1], ["a", "b"])
    if case == "empty class":
        (root / "train" / "c").mkdir()
    elif case == "unknown test class":
        write_image_folder(root, "test", grey(2), [0, 1], ["a", "zebra"])
    elif case == "corrupt file":
        (root / "train" / "a" / "broken.png").write_bytes(b"\x89PNG not really")
    elif case == "too large":
        return ["--data.init_args.max_pixels", "50"]
    elif case == "mixed sizes":
        Image.fromarray(grey(1, 12, 10)[0]).save(root / "train" / "b" / "big.png")
    return []


MESSAGES = {
    "no class folders": "holds no class folders",
    "empty class": "holds no images",
    "unknown test class": "zebra is a class that",
    "corrupt file": "broken.png",
    "too large": "more than max_pixels=50",
    "mixed sizes": "set --data.init_args.image_size",
}


@pytest.mark.parametrize("case", list(MESSAGES))
def test_bad_folders_are_one_line_exit_2_and_left_unchanged(case, tmp_path):
    root = tmp_path / "d"
    extra = bad_folder(root, case)
    before = listing(root)
    proc = run_cli(
        "fit",
        "--config",
        "configs/folder_mlp.yaml",
        "--data.init_args.root",
        str(root),
        "--data.init_args.channels",
        "1",
        "--data.init_args.val_size",
        "1",
        "--data.init_args.cache_dir",
        str(tmp_path / "c"),
        "--trainer.logger.init_args.save_dir",
        str(tmp_path / "logs"),
        "--trainer.max_epochs",
        "1",
        *extra,
        check=False,
    )
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and lines[-1].startswith("error: ") and MESSAGES[case] in lines[-1], proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and listing(root) == before


def test_skip_bad_skips_and_counts(tmp_path, capsys):
    bad_folder(tmp_path / "d", "corrupt file")
    dm = ImageFolderDataModule(
        root=str(tmp_path / "d"), channels=1, val_size=1, test_size=0.5, skip_bad=True, cache_dir=str(tmp_path / "c")
    )
    dm.setup("fit")
    assert sum(len(dm.splits[s]) for s in ("train", "val", "test")) == 4  # the broken file left out
    assert "skipped 1 of 5 images" in capsys.readouterr().err


def test_no_images_at_all_and_a_cache_inside_root_are_refused(tmp_path):
    with pytest.raises(UsageError, match="train does not exist: put your images in"):
        ImageFolderDataModule(root=str(tmp_path / "nothing"))
    bad_folder(tmp_path / "d", "corrupt file")
    with pytest.raises(UsageError, match="is inside root"):
        ImageFolderDataModule(root=str(tmp_path / "d"), cache_dir=str(tmp_path / "d" / "cache"))
