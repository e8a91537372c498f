"""The city head in torch: a copy of NanoDet's head per stride, with new class rows.

It starts as the COCO head (the 3x3 conv and the box rows of the 1x1 conv are
copied, so boxes come out as well as COCO's from the first step) and only the
class rows start from nothing. Losses: focal loss on the classes (most cells
are background), GIoU on the boxes of positive cells.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 # torch's own convention

from vision.training.city_head.nanodet_graph import BOX_CHANNELS, REG_BINS, HeadLevel, LevelWeights
from vision.training.city_head.targets import cell_centres

PRIOR = 0.01  # initial score of every class: most cells are background


class CityHead(torch.nn.Module):
    def __init__(self, levels: list[HeadLevel], n_classes: int) -> None:
        super().__init__()
        self.n_classes = n_classes
        self.alphas = [lv.alpha for lv in levels]
        self.strides = [lv.stride for lv in levels]
        self._conv3: list[torch.nn.Conv2d] = []
        self._out: list[torch.nn.Conv2d] = []
        prior_logit = float(-np.log((1 - PRIOR) / PRIOR))
        for lv in levels:
            c = lv.channels
            conv3 = torch.nn.Conv2d(c, c, 3)
            out = torch.nn.Conv2d(c, n_classes + BOX_CHANNELS, 1)
            with torch.no_grad():
                conv3.weight.copy_(torch.tensor(lv.conv3_w))
                _bias(conv3).copy_(torch.tensor(lv.conv3_b))
                torch.nn.init.normal_(out.weight[:n_classes], std=0.01)
                _bias(out)[:n_classes] = prior_logit
                out.weight[n_classes:, :, 0, 0] = torch.tensor(lv.box_w)
                _bias(out)[n_classes:] = torch.tensor(lv.box_b)
            self._conv3.append(conv3)
            self._out.append(out)
        self.conv3 = torch.nn.ModuleList(self._conv3)  # registered, so the optimiser sees the parameters
        self.out = torch.nn.ModuleList(self._out)
        self.centres = [torch.from_numpy(cell_centres(lv.side, lv.stride)) for lv in levels]

    def forward(self, level: int, neck: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Class logits (B, cells, K) and box distributions (B, cells, 44) of one level."""
        y = F.leaky_relu(self._conv3[level](neck), self.alphas[level])
        y = self._out[level](y).flatten(2).transpose(1, 2)
        return y[..., : self.n_classes], y[..., self.n_classes :]

    def boxes(self, level: int, distributions: torch.Tensor) -> torch.Tensor:
        """xyxy in input pixels from the 4 x 11-bin side distributions (GFL), as the edge decodes them."""
        p = distributions.reshape(*distributions.shape[:-1], 4, REG_BINS).softmax(-1)
        d = (p * torch.arange(REG_BINS, dtype=p.dtype)).sum(-1) * self.strides[level]
        c = self.centres[level]
        return torch.cat([c - d[..., :2], c + d[..., 2:]], dim=-1)

    def weights(self) -> list[LevelWeights]:
        out = []
        for conv3, o in zip(self._conv3, self._out, strict=True):
            out.append(
                LevelWeights(
                    conv3_w=conv3.weight.detach().numpy().copy(),
                    conv3_b=_bias(conv3).detach().numpy().copy(),
                    out_w=o.weight.detach().numpy()[:, :, 0, 0].copy(),
                    out_b=_bias(o).detach().numpy().copy(),
                )
            )
        return out


def _bias(conv: torch.nn.Conv2d) -> torch.Tensor:
    assert conv.bias is not None  # every conv here is made with a bias
    return conv.bias


def focal_loss(logits: torch.Tensor, target: torch.Tensor, alpha: float = 0.25, gamma: float = 2.0) -> torch.Tensor:
    """Summed sigmoid focal loss; targets of -1 (ignored cells) count nothing."""
    valid = (target >= 0).to(logits.dtype)
    t = target.clamp(min=0)
    p = logits.sigmoid()
    ce = F.binary_cross_entropy_with_logits(logits, t, reduction="none")
    p_t = p * t + (1 - p) * (1 - t)
    a_t = alpha * t + (1 - alpha) * (1 - t)
    return (a_t * (1 - p_t) ** gamma * ce * valid).sum()


def giou_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Summed 1 - GIoU of matching xyxy rows."""
    ix1 = torch.max(pred[:, 0], target[:, 0])
    iy1 = torch.max(pred[:, 1], target[:, 1])
    ix2 = torch.min(pred[:, 2], target[:, 2])
    iy2 = torch.min(pred[:, 3], target[:, 3])
    inter = (ix2 - ix1).clamp(min=0) * (iy2 - iy1).clamp(min=0)
    area_p = (pred[:, 2] - pred[:, 0]).clamp(min=0) * (pred[:, 3] - pred[:, 1]).clamp(min=0)
    area_t = (target[:, 2] - target[:, 0]) * (target[:, 3] - target[:, 1])
    union = area_p + area_t - inter + 1e-6
    hull = (torch.max(pred[:, 2], target[:, 2]) - torch.min(pred[:, 0], target[:, 0])) * (
        torch.max(pred[:, 3], target[:, 3]) - torch.min(pred[:, 1], target[:, 1])
    ) + 1e-6
    giou = inter / union - (hull - union) / hull
    return (1 - giou).sum()
