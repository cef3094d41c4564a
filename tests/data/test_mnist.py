from pathlib import Path

import numpy as np
import pytest
import torch

from src.data.mnist import FashionMNISTDataModule, MNISTDataModule
from src.errors import UsageError
from tests.conftest import make_idx_dataset


@pytest.mark.parametrize("cls", [MNISTDataModule, FashionMNISTDataModule])
def test_generated_idx_files_give_exact_splits(tmp_path, cls):
    make_idx_dataset(tmp_path, cls.dataset_cls.__name__, n_train=300, n_test=70)
    dm = cls(data_dir=str(tmp_path), val_size=50, seed=3)
    dm.setup("fit")
    train, val, test = (dm.splits[s] for s in ("train", "val", "test"))
    assert (len(train), len(val), len(test)) == (250, 50, 70)  # the whole test file, nothing more
    assert train.images.shape == (250, 1, 28, 28) and train.images.dtype == torch.float32
    assert train.labels.dtype == torch.int64 and dm.num_classes == 10 and len(dm.classes) == 10
    # The splits hold [0, 1] pixels; the statistics the model normalizes with are the train split's: zero-mean,
    # unit-std exactly after it.
    normalized = (train.images - dm.mean) / dm.std
    assert abs(normalized.mean().item()) < 1e-5 and abs(normalized.std(unbiased=False).item() - 1) < 1e-5
    # Train and val are disjoint and together the whole train file (matched on the raw pixels).
    raw = torch.from_numpy(
        np.frombuffer(
            (tmp_path / cls.dataset_cls.__name__ / "raw" / "train-images-idx3-ubyte").read_bytes()[16:], np.uint8
        )
        .reshape(300, 784)
        .copy()
    )
    pixels = lambda x: torch.round(x.reshape(len(x), -1) * 255).to(torch.uint8)  # noqa: E731
    seen = {bytes(r.numpy()) for r in pixels(train.images)} | {bytes(r.numpy()) for r in pixels(val.images)}
    assert len(seen) == 300 and seen == {bytes(r.numpy()) for r in raw}


def test_split_depends_on_seed_only(tmp_path):
    make_idx_dataset(tmp_path, "MNIST", n_train=200, n_test=10)
    a, b, c = (MNISTDataModule(data_dir=str(tmp_path), val_size=40, seed=s) for s in (1, 1, 2))
    for dm in (a, b, c):
        dm.setup("fit")
    assert torch.equal(a.splits["val"].labels, b.splits["val"].labels)
    assert torch.equal(a.splits["val"].images, b.splits["val"].images)
    assert not torch.equal(a.splits["val"].images, c.splits["val"].images)


def test_normalize_off_keeps_unit_scale(tmp_path):
    make_idx_dataset(tmp_path, "MNIST", n_train=100, n_test=10)
    dm = MNISTDataModule(data_dir=str(tmp_path), val_size=10, normalize=False)
    dm.setup("fit")
    x = dm.splits["train"].images
    assert x.min() >= 0 and x.max() <= 1 and x.max() > 0.99


def test_real_mnist_statistics_match_published(mnist_root):
    dm = MNISTDataModule(data_dir=str(mnist_root))
    dm.setup("fit")
    assert abs(dm.mean.item() - 0.1307) < 1e-3 and abs(dm.std.item() - 0.3081) < 1e-3
    assert [len(dm.splits[s]) for s in ("train", "val", "test")] == [55000, 5000, 10000]


def test_real_fashion_mnist_statistics_and_classes_match_published(fashion_root):
    """The data set authors' figures: 6,000 training and 1,000 test images per class; the pixel mean and std of the
    (here 55,000-image) training split."""
    dm = FashionMNISTDataModule(data_dir=str(fashion_root))
    dm.setup("fit")
    assert abs(dm.mean.item() - 0.2860) < 1e-3 and abs(dm.std.item() - 0.3530) < 1e-3
    assert [len(dm.splits[s]) for s in ("train", "val", "test")] == [55000, 5000, 10000]
    train = torch.cat([dm.splits["train"].labels, dm.splits["val"].labels])
    assert (
        torch.bincount(train).tolist() == [6000] * 10
        and torch.bincount(dm.splits["test"].labels).tolist() == [1000] * 10
    )
    assert dm.classes[0] == "T-shirt/top" and dm.classes[9] == "Ankle boot"


def test_val_on_test_trains_on_all_60000_and_validates_on_the_test_images(fashion_root):
    """Seed 004's protocol: the whole official train set trains (its statistics are the data set's own, 0.2860 /
    0.3530 to four places) and validation scores the 10,000 test images."""
    dm = FashionMNISTDataModule(data_dir=str(fashion_root), val_on_test=True)
    dm.setup("fit")
    assert len(dm.splits["train"]) == 60000 and dm.splits["val"] is dm.splits["test"] and len(dm.splits["val"]) == 10000
    assert round(dm.mean.item(), 4) == 0.2860 and round(dm.std.item(), 4) == 0.3530
    assert torch.bincount(dm.splits["train"].labels).tolist() == [6000] * 10


def test_missing_data_names_directory_and_setting(tmp_path):
    with pytest.raises(UsageError, match=rf"{tmp_path}.*DATA_DIR.*download"):
        MNISTDataModule(data_dir=str(tmp_path)).setup("fit")


def test_truncated_idx_file_is_a_clear_error(tmp_path):
    make_idx_dataset(tmp_path, "MNIST", n_train=100, n_test=10)
    f = tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte"
    f.write_bytes(f.read_bytes()[:-100])
    with pytest.raises(UsageError, match="truncated"):
        MNISTDataModule(data_dir=str(tmp_path), val_size=10).setup("fit")


def test_not_an_idx_file(tmp_path):
    make_idx_dataset(tmp_path, "MNIST", n_train=100, n_test=10)
    (tmp_path / "MNIST" / "raw" / "t10k-labels-idx1-ubyte").write_bytes(b"<html>not found</html>")
    with pytest.raises(UsageError, match="not an IDX file"):
        MNISTDataModule(data_dir=str(tmp_path), val_size=10).setup("fit")


@pytest.mark.parametrize("kwargs", [{"batch_size": 0}, {"val_size": 0}, {"eval_batch_size": -1}, {"crop_pad": -1}])
def test_bad_sizes_rejected(kwargs):
    with pytest.raises(UsageError):
        MNISTDataModule(**kwargs)


def test_val_size_larger_than_train_set(tmp_path):
    make_idx_dataset(tmp_path, "MNIST", n_train=100, n_test=10)
    with pytest.raises(UsageError, match="val_size=100 leaves no training images"):
        MNISTDataModule(data_dir=str(tmp_path), val_size=100).setup("fit")


def test_data_dir_defaults_to_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    assert MNISTDataModule().data_dir == tmp_path
    monkeypatch.delenv("DATA_DIR")
    assert str(MNISTDataModule().data_dir) == "data"


def test_present_folder_is_never_downloaded_again(tmp_path, monkeypatch):
    make_idx_dataset(tmp_path, "MNIST", n_train=20, n_test=10)

    def no_download(self):
        raise AssertionError("downloaded although the folder exists")

    monkeypatch.setattr(MNISTDataModule.dataset_cls, "download", no_download)
    MNISTDataModule(data_dir=str(tmp_path), download=True).prepare_data()


def test_failed_download_is_a_clear_error(tmp_path, monkeypatch):
    from urllib.error import URLError

    def offline(self):
        raise URLError("no network")

    monkeypatch.setattr(FashionMNISTDataModule.dataset_cls, "download", offline)
    with pytest.raises(UsageError, match=r"could not download FashionMNIST into .*DATA_DIR.*no network") as info:
        FashionMNISTDataModule(data_dir=str(tmp_path / "new" / "deeper"), download=True).prepare_data()
    assert "\n" not in str(info.value)
    assert list(tmp_path.iterdir()) == []  # not even the folders it had to make for the download
    (tmp_path / "datasets").mkdir()
    make_idx_dataset(tmp_path / "datasets", "MNIST", n_train=20, n_test=10)  # a data folder with something in it
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    with pytest.raises(UsageError):
        FashionMNISTDataModule(data_dir=str(tmp_path / "datasets"), download=True).prepare_data()
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before  # no empty FashionMNIST/raw


def test_a_download_lands_whole_or_not_at_all(tmp_path, monkeypatch):
    """torchvision's download writes into the temporary folder; only the finished folder is moved into place."""
    seen = []

    def fake_download(self):  # called for the train and the test split, as torchvision's is
        seen.append(Path(self.root))
        if not (Path(self.root) / "FashionMNIST").exists():
            make_idx_dataset(Path(self.root), "FashionMNIST", n_train=20, n_test=10)

    monkeypatch.setattr(FashionMNISTDataModule.dataset_cls, "download", fake_download)
    FashionMNISTDataModule(data_dir=str(tmp_path), download=True).prepare_data()
    assert seen and all(p.parent == tmp_path and p.name.startswith(".download-") for p in seen)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["FashionMNIST"]  # the temporary folder is gone
    assert len(list((tmp_path / "FashionMNIST" / "raw").iterdir())) == 4


def test_idx_files_of_another_shape_or_with_bad_labels_are_one_clear_error(tmp_path):
    """A whole, well-formed IDX file of 32x32 images would train on scrambled pixels; a label byte of 200 would fail
    deep inside cross_entropy: both are refused, naming the file or folder."""
    from tests.conftest import write_idx

    make_idx_dataset(tmp_path, "MNIST", n_train=100, n_test=10)
    raw = tmp_path / "MNIST" / "raw"
    write_idx(raw / "train-images-idx3-ubyte", np.zeros((100, 32, 32), np.uint8))
    with pytest.raises(UsageError, match=r"train-images-idx3-ubyte holds \(32, 32\) images, not MNIST's \(28, 28\)"):
        MNISTDataModule(data_dir=str(tmp_path), val_size=10).setup("fit")
    write_idx(raw / "train-images-idx3-ubyte", np.zeros((100, 28, 28), np.uint8))
    write_idx(raw / "train-labels-idx1-ubyte", np.full(100, 200, np.uint8))
    with pytest.raises(UsageError, match=r"a label is 200, but MNIST has 10 classes \(0-9\)"):
        MNISTDataModule(data_dir=str(tmp_path), val_size=10).setup("fit")


class OwnFiles(MNISTDataModule):
    """A user's data module over files of their own: no torchvision class to download them."""

    dataset_cls = None

    @property
    def folder(self) -> Path:
        return self.data_dir / "mine"


def test_a_data_set_of_ones_own_files_that_are_missing_is_one_line_not_a_download(tmp_path):
    with pytest.raises(UsageError, match=rf"OwnFiles's files are not in {tmp_path / 'mine'}, and it has no download"):
        OwnFiles(data_dir=str(tmp_path)).prepare_data()
    assert list(tmp_path.iterdir()) == []
