"""Pictures for the test report, drawn with PIL (a torchvision dependency): no plotting library needed."""

import torch
from PIL import Image, ImageDraw
from torchvision.utils import make_grid

WHITE, BLACK = (255, 255, 255), (0, 0, 0)


def confusion_image(confmat: torch.Tensor, classes: tuple[str, ...], cell: int = 44) -> Image.Image:
    """confmat [C, C] (rows: true class, columns: predicted) as a heat map with counts and class names.
    Cells are shaded by the row-normalized count, so each row reads as "where this class went"."""
    n = len(classes)
    label_w, top = 110, 24
    img = Image.new("RGB", (label_w + n * cell + 10, top + n * cell + 60), WHITE)
    draw = ImageDraw.Draw(img)
    rates = confmat.float() / confmat.sum(dim=1, keepdim=True).clamp(min=1)
    for i in range(n):
        draw.text((4, top + i * cell + cell // 2 - 6), classes[i][:16], fill=BLACK)
        for j in range(n):
            shade = int(255 * (1 - rates[i, j].item()))
            x0, y0 = label_w + j * cell, top + i * cell
            draw.rectangle([x0, y0, x0 + cell - 1, y0 + cell - 1], fill=(shade, shade, 255), outline=(200, 200, 200))
            draw.text((x0 + 4, y0 + cell // 2 - 6), str(int(confmat[i, j])), fill=WHITE if shade < 110 else BLACK)
    for j in range(n):  # predicted-class names under the columns, staggered so long names do not collide
        draw.text((label_w + j * cell + 2, top + n * cell + 4 + 14 * (j % 3)), classes[j][:7], fill=BLACK)
    draw.text((4, 4), "true class (rows) vs predicted class (columns)", fill=BLACK)
    return img


def labelled_grid(images: torch.Tensor, captions: list[str], ncol: int = 8, scale: int = 3) -> Image.Image:
    """images [N, C, H, W] in [0, 1] -> one picture, each tile enlarged `scale` times with its caption below."""
    n, c, h, w = images.shape
    tile_w, tile_h = w * scale + 8, h * scale + 22
    rows = (n + ncol - 1) // ncol
    img = Image.new("RGB", (ncol * tile_w, max(rows, 1) * tile_h), WHITE)
    draw = ImageDraw.Draw(img)
    for k in range(n):
        x = images[k].clamp(0, 1).mul(255).byte()
        x = x.expand(3, h, w) if c == 1 else x
        tile = Image.fromarray(x.permute(1, 2, 0).cpu().numpy()).resize((w * scale, h * scale), Image.NEAREST)
        x0, y0 = (k % ncol) * tile_w + 4, (k // ncol) * tile_h + 2
        img.paste(tile, (x0, y0))
        draw.text((x0, y0 + h * scale + 2), captions[k][:22], fill=BLACK)
    return img


def filter_grid(weights: torch.Tensor, ncol: int = 8, scale: int = 4) -> Image.Image:
    """First-layer weights as pictures, one per unit: [K, C, H, W]; each scaled to [0, 1] on its own."""
    grid = make_grid(weights.detach().float().cpu(), nrow=ncol, normalize=True, scale_each=True, pad_value=1.0)
    x = grid.mul(255).byte().permute(1, 2, 0).numpy()
    return Image.fromarray(x).resize((grid.shape[2] * scale, grid.shape[1] * scale), Image.NEAREST)
