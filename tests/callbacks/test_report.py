import torch
from torchmetrics.classification import (
    MulticlassConfusionMatrix,
    MulticlassF1Score,
    MulticlassPrecision,
    MulticlassRecall,
)

from src.callbacks.report import first_layer_filters, markdown_table, misclassified_figure, per_class_rows, rendered
from src.manual.cnn import ManualCNN
from src.manual.mlp import ManualMLP
from src.models.cnn import SmallCNN
from src.models.mlp import MLP

# Fixed predictions for 3 classes, 10 examples; the expected numbers are counted by hand below.
TARGET = torch.tensor([0, 0, 0, 0, 1, 1, 1, 2, 2, 2])
PRED = torch.tensor([0, 0, 1, 2, 1, 1, 0, 2, 2, 2])


def test_per_class_numbers_match_a_hand_count():
    args = (PRED, TARGET)
    rows = per_class_rows(
        MulticlassPrecision(3, average=None)(*args),
        MulticlassRecall(3, average=None)(*args),
        MulticlassF1Score(3, average=None)(*args),
        MulticlassConfusionMatrix(3)(*args),
        ("a", "b", "c"),
    )
    # class a: predicted 3 times (2 right) -> P 2/3; 4 true (2 found) -> R 1/2; F1 = 2PR/(P+R) = 4/7
    # class b: predicted 3 times (2 right) -> P 2/3; 3 true (2 found) -> R 2/3; F1 2/3
    # class c: predicted 4 times (3 right) -> P 3/4; 3 true (3 found) -> R 1;   F1 6/7
    expected = [("a", 2 / 3, 1 / 2, 4 / 7, 4), ("b", 2 / 3, 2 / 3, 2 / 3, 3), ("c", 3 / 4, 1.0, 6 / 7, 3)]
    for row, (name, p, r, f, s) in zip(rows, expected):
        assert row["class"] == name and row["support"] == s
        assert abs(row["precision"] - p) < 1e-4 and abs(row["recall"] - r) < 1e-4 and abs(row["f1"] - f) < 1e-4
    assert markdown_table(rows).splitlines()[0] == "| class | precision | recall | f1 | support |"


def test_first_layer_filters_are_found_in_any_net_and_equal_the_manual_nets_weights():
    """Found, not asked for: the first Linear's rows as images, or the first Conv2d's kernels; a hand-written net
    through its nn.Module twin, unit by unit its own weights; a net with neither draws none."""
    manual = ManualMLP(in_shape=(3, 32, 32), hidden=[50])
    w = first_layer_filters(manual, (3, 32, 32))
    assert w.shape == (50, 3, 32, 32) and torch.equal(w[7].flatten(), manual.params["W1"][:, 7])  # unit 7's weights
    cnn = ManualCNN(in_shape=(3, 32, 32))
    assert torch.equal(first_layer_filters(cnn, (3, 32, 32)), cnn.params["W1"])  # [16, 3, 5, 5] kernels as they are
    assert first_layer_filters(SmallCNN(), (1, 28, 28)).shape == (16, 1, 5, 5)
    assert first_layer_filters(MLP(), (1, 28, 28)).shape == (256, 1, 28, 28)
    assert first_layer_filters(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Identity()), (1, 28, 28)) is None


def test_misclassified_figure_has_one_captioned_tile_per_image():
    images = torch.rand(10, 1, 28, 28)
    fig = misclassified_figure(images, [f"{i} -> {9 - i}" for i in range(10)], ncol=8)
    (ax,) = fig.axes
    assert [t.get_text() for t in ax.texts] == [f"{i} -> {9 - i}" for i in range(10)]
    grid = torch.from_numpy(ax.images[0].get_array().data).float()  # [H', W', 3]: 2 rows of 8 tiles, 12 px padding
    assert grid.shape == (2 * (28 + 12) + 12, 8 * (28 + 12) + 12, 3)
    assert torch.allclose(grid[12:40, 3 * 40 + 12 : 3 * 40 + 40, 0], images[3, 0])  # tile 3 where it belongs
    x, y = ax.texts[3].get_position()
    assert 3 * 40 + 12 < x < 3 * 40 + 40 and y <= 12  # its caption centred above it
    image = rendered(fig)
    assert image.dtype == torch.uint8 and image.shape[0] == 3 and image.shape[1] > 100
