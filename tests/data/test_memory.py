from pathlib import Path
from types import SimpleNamespace

import torch
from torch.utils.data import DataLoader

from src.data.memory import InMemoryDataset, keep_batch
from src.data.mnist import MNISTDataModule
from tests.conftest import make_idx_dataset


def _dataset(n: int) -> InMemoryDataset:
    return InMemoryDataset(torch.arange(n, dtype=torch.float32).view(n, 1, 1, 1), torch.arange(n))


def test_dataloader_serves_whole_batches_by_indexing():
    ds = _dataset(10)
    batches = list(DataLoader(ds, batch_size=4, collate_fn=keep_batch))
    assert [len(y) for _, y in batches] == [4, 4, 2]
    x, y = batches[1]
    assert (
        x.shape == (4, 1, 1, 1) and torch.equal(y, torch.tensor([4, 5, 6, 7])) and torch.equal(x.flatten(), y.float())
    )


def _rank_views(data_dir: Path, world: int = 2) -> list[MNISTDataModule]:
    """The data module as each DDP rank builds it (same seed, its own rank), on generated IDX files."""
    views = []
    for rank in range(world):
        dm = MNISTDataModule(data_dir=str(data_dir), batch_size=64, eval_batch_size=100, val_size=101, seed=7)
        cpu = SimpleNamespace(root_device=torch.device("cpu"))
        dm.trainer = SimpleNamespace(global_rank=rank, world_size=world, strategy=cpu)
        dm.setup("fit")
        views.append(dm)
    return views


def test_each_rank_trains_on_its_own_half_and_together_on_every_image(tmp_path):
    views = _rank_views(make_idx_dataset(tmp_path, "MNIST", n_train=1101, n_test=10))  # 1000 train, 101 val
    train = views[0].splits["train"]
    assert all(torch.equal(v.splits["train"].images, train.images) for v in views)  # one split, whatever the rank
    served = []
    for dm in views:
        loader = dm.train_dataloader()
        loader.sampler.set_epoch(3)  # as Lightning does each epoch
        served.append(torch.cat([x.flatten(1) for x, _ in loader]))
    assert len(served[0]) == len(served[1]) == 500
    rows = {tuple(r.tolist()) for r in torch.cat(served)}
    assert len(rows) == 1000 and rows == {tuple(r.tolist()) for r in train.images.flatten(1)}  # disjoint, covering


def test_each_validation_image_is_scored_exactly_once_across_ranks(tmp_path):
    views = _rank_views(make_idx_dataset(tmp_path, "MNIST", n_train=1101, n_test=10))  # 101 val: odd on 2 ranks
    served = torch.cat([x.flatten(1) for dm in views for x, _ in dm.val_dataloader()])
    assert len(served) == 101 and len({tuple(r.tolist()) for r in served}) == len(views[0].splits["val"]) == 101


def test_without_shuffling_every_epoch_serves_the_files_order(tmp_path):
    """shuffle=False (seed 002's ablation): the training images in the order the file holds them, each epoch alike;
    the default reshuffles each epoch."""
    data_dir = make_idx_dataset(tmp_path, "MNIST", n_train=300, n_test=10)
    cpu = SimpleNamespace(global_rank=0, world_size=1, strategy=SimpleNamespace(root_device=torch.device("cpu")))
    orders = {}
    for shuffle in (False, True):
        dm = MNISTDataModule(data_dir=str(data_dir), batch_size=50, val_size=100, seed=3, shuffle=shuffle)
        dm.trainer = cpu
        dm.setup("fit")
        everything, _ = dm.read_split(train=True)
        served = []
        for epoch in (0, 1):
            loader = dm.train_dataloader()
            loader.sampler.set_epoch(epoch)
            served.append(torch.cat([x.flatten(1) for x, _ in loader]))
        orders[shuffle] = served
    unshuffled = orders[False][0]
    assert torch.equal(unshuffled, orders[False][1])  # the same order every epoch
    rows = [tuple(r.tolist()) for r in everything.flatten(1)]
    positions = [rows.index(tuple(r.tolist())) for r in (unshuffled * 255).round().to(torch.uint8)]  # served as [0, 1]
    assert positions == sorted(positions) and len(positions) == 200  # the file's order (its 200 training images)
    assert not torch.equal(orders[True][0], orders[True][1])  # shuffled: another order each epoch
