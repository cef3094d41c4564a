import pickle

import numpy as np
import pytest
import torch

from src.data.cifar10 import CIFAR10DataModule
from src.errors import UsageError
from tests.conftest import REAL_DATA, make_cifar10


def test_generated_batches_decode_and_normalize(tmp_path, no_cifar_md5):
    make_cifar10(tmp_path, n_per_batch=40)
    dm = CIFAR10DataModule(data_dir=str(tmp_path), val_size=20)
    dm.setup("fit")
    assert [len(dm.splits[s]) for s in ("train", "val", "test")] == [180, 20, 40]
    assert dm.splits["train"].images.shape == (180, 3, 32, 32) and dm.in_shape == (3, 32, 32)
    # Per-channel statistics of the train split, computed here independently from the raw batches.
    order = torch.randperm(200, generator=torch.Generator().manual_seed(0))
    folder = tmp_path / "cifar-10-batches-py"
    raw = np.concatenate([pickle.loads((folder / f"data_batch_{i}").read_bytes())["data"] for i in range(1, 6)])
    train = raw.reshape(200, 3, 32, 32)[order[20:].numpy()] / 255.0
    np.testing.assert_allclose(dm.mean.numpy(), train.mean(axis=(0, 2, 3)), atol=1e-6)
    np.testing.assert_allclose(dm.std.numpy(), train.std(axis=(0, 2, 3)), atol=1e-6)
    # The decoded layout is channel planes: pixel (c, y, x) of image 0 is byte c*1024 + y*32 + x.
    first_train = dm.splits["train"].images[0]  # [0, 1] pixels
    expected = torch.from_numpy(raw[order[20].item()].reshape(3, 32, 32) / 255.0).float()
    assert torch.allclose(first_train, expected, atol=1e-5)


def test_md5_check_is_active_for_real_runs(tmp_path):
    make_cifar10(tmp_path, n_per_batch=4)  # generated files cannot match torchvision's checksums
    with pytest.raises(UsageError, match="corrupt"):
        CIFAR10DataModule(data_dir=str(tmp_path), val_size=2).setup("fit")


def test_corrupt_batch_is_a_clear_error(tmp_path, no_cifar_md5):
    make_cifar10(tmp_path, n_per_batch=4)
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").write_bytes(b"\x80\x02garbage")
    with pytest.raises(UsageError, match="corrupt"):
        CIFAR10DataModule(data_dir=str(tmp_path), val_size=2).setup("fit")


def test_missing_folder_names_it(tmp_path):
    with pytest.raises(UsageError, match="cifar-10-batches-py does not exist.*DATA_DIR"):
        CIFAR10DataModule(data_dir=str(tmp_path)).setup("fit")


def test_real_cifar10_statistics_match_published():
    if not (REAL_DATA / "cifar-10-batches-py").is_dir():
        pytest.skip(f"no real CIFAR-10 under {REAL_DATA} (none on this machine)")
    dm = CIFAR10DataModule(data_dir=str(REAL_DATA))
    dm.setup("fit")
    assert torch.allclose(dm.mean, torch.tensor([0.4914, 0.4822, 0.4465]), atol=1e-3)
    assert torch.allclose(dm.std, torch.tensor([0.2470, 0.2435, 0.2616]), atol=1e-3)
