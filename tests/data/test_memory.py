import torch
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
from torch.utils.data import DataLoader, DistributedSampler

from src.data.memory import InMemoryDataset, keep_batch


def _dataset(n: int) -> InMemoryDataset:
    return InMemoryDataset(torch.arange(n, dtype=torch.float32).view(n, 1, 1, 1), torch.arange(n))


def test_dataloader_serves_whole_batches_by_indexing():
    ds = _dataset(10)
    batches = list(DataLoader(ds, batch_size=4, collate_fn=keep_batch))
    assert [len(y) for _, y in batches] == [4, 4, 2]
    x, y = batches[1]
    assert x.shape == (4, 1, 1, 1) and torch.equal(y, torch.tensor([4, 5, 6, 7])) and torch.equal(x.flatten(), y.float())


def test_train_shards_are_disjoint_and_cover_each_epoch():
    ds = _dataset(1000)
    seen = []
    for rank in (0, 1):
        sampler = DistributedSampler(ds, num_replicas=2, rank=rank, shuffle=True, seed=7)
        sampler.set_epoch(3)
        seen.append(torch.cat([y for _, y in DataLoader(ds, batch_size=64, sampler=sampler, collate_fn=keep_batch)]))
    assert len(seen[0]) == len(seen[1]) == 500
    assert set(seen[0].tolist()).isdisjoint(seen[1].tolist())
    assert sorted(torch.cat(seen).tolist()) == list(range(1000))


def test_eval_shards_score_each_image_exactly_once():
    ds = _dataset(1001)  # odd: a padding DistributedSampler would score one image twice
    got = []
    for rank in (0, 1):
        sampler = UnrepeatedDistributedSampler(ds, num_replicas=2, rank=rank, shuffle=False)
        got += torch.cat([y for _, y in DataLoader(ds, batch_size=100, sampler=sampler, collate_fn=keep_batch)]).tolist()
    assert sorted(got) == list(range(1001))
