"""NanoDet's ONNX graph: find its head, tap the features under it, graft a second head beside it.

Why: the COCO NanoDet was trained on real photos; its neck (FPN) features hold
real-image knowledge of objects COCO has no class for (a stall is close to an
umbrella, a bench, a dining table; a sack to a suitcase). A second head over the
same neck, trained on our composites with the neck frozen, gives the city
classes real-image features at no extra backbone cost: one forward pass serves
the COCO classes and the city classes.

The head of this export, per stride (8, 16, 32): `Pad` (the neck output, padded)
→ 3x3 `Conv` → `LeakyRelu` → 1x1 `Conv` (80 class + 44 box channels) → `Split`
→ `Sigmoid` on the classes → reshaped to [1, cells, 80] and [1, cells, 44].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

REG_BINS = 11
BOX_CHANNELS = 4 * REG_BINS
GRAFT_PREFIX = "city_head"


class GraphError(ValueError):
    """An ONNX file whose head is not the NanoDet GFL head this module knows."""


@dataclass(frozen=True)
class HeadLevel:
    """One stride of the head: where it reads, what it outputs, its weights."""

    stride: int
    side: int  # grid cells per side (square input)
    neck: str  # tensor the head's 3x3 conv reads (the padded neck output)
    scores: str  # graph output [1, cells, classes], sigmoid applied
    boxes: str  # graph output [1, cells, 44]
    conv3_w: np.ndarray  # (C, C, 3, 3)
    conv3_b: np.ndarray
    alpha: float  # LeakyRelu slope
    out_w: np.ndarray  # (classes + 44, C) of the 1x1 output conv
    out_b: np.ndarray
    n_classes: int

    @property
    def channels(self) -> int:
        return int(self.conv3_w.shape[0])

    @property
    def box_w(self) -> np.ndarray:
        return self.out_w[self.n_classes :]

    @property
    def box_b(self) -> np.ndarray:
        return self.out_b[self.n_classes :]


def _input_side(model) -> int:  # type: ignore[no-untyped-def]
    dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    if len(dims) != 4 or dims[2] != dims[3] or dims[2] <= 0:
        raise GraphError(f"expected a square NCHW input, got {dims}")
    return int(dims[2])


def head_levels(model) -> list[HeadLevel]:  # type: ignore[no-untyped-def]
    """The head's levels, finest stride first, read off an `onnx.ModelProto`."""
    from onnx import numpy_helper

    graph = model.graph
    producer = {out: node for node in graph.node for out in node.output}
    weights = {t.name: t for t in graph.initializer}
    side_in = _input_side(model)

    def weight(name: str) -> np.ndarray:
        if name not in weights:
            raise GraphError(f"{name} is not a constant weight")
        return np.asarray(numpy_helper.to_array(weights[name]), dtype=np.float32)

    by_conv: dict[str, dict[str, str]] = {}
    for out in graph.output:
        node = producer.get(out.name)
        through_sigmoid = False
        while node is not None and node.op_type != "Split":
            through_sigmoid |= node.op_type == "Sigmoid"
            node = producer.get(node.input[0])
        if node is None:
            raise GraphError(f"output {out.name} does not come from a Split of the head's output conv")
        by_conv.setdefault(node.input[0], {})["scores" if through_sigmoid else "boxes"] = out.name
    levels = []
    for conv_out, outs in by_conv.items():
        conv1 = producer[conv_out]
        relu = producer.get(conv1.input[0])
        conv3 = producer.get(relu.input[0]) if relu is not None else None
        if conv1.op_type != "Conv" or relu is None or relu.op_type != "LeakyRelu" or conv3 is None:
            raise GraphError(f"{conv_out}: expected Conv(3x3) -> LeakyRelu -> Conv(1x1) before the split")
        if "scores" not in outs or "boxes" not in outs:
            raise GraphError(f"{conv_out}: expected one score and one box output, got {sorted(outs)}")
        alpha = next((a.f for a in relu.attribute if a.name == "alpha"), 0.01)
        out_w = weight(conv1.input[1])
        out_w = out_w.reshape(out_w.shape[0], -1)
        conv3_w = weight(conv3.input[1])
        if conv3_w.shape[2:] != (3, 3) or any(a.name == "pads" and any(a.ints) for a in conv3.attribute):
            raise GraphError(f"{conv3.name}: expected an unpadded 3x3 conv after an explicit Pad")
        n_classes = out_w.shape[0] - BOX_CHANNELS
        levels.append(
            HeadLevel(
                stride=0,
                side=0,
                neck=conv3.input[0],
                scores=outs["scores"],
                boxes=outs["boxes"],
                conv3_w=conv3_w,
                conv3_b=weight(conv3.input[2]),
                alpha=float(alpha),
                out_w=out_w,
                out_b=weight(conv1.input[2]),
                n_classes=int(n_classes),
            )
        )
    if len(levels) != 3:
        raise GraphError(f"expected 3 head levels, found {len(levels)}")
    # the grid from the neck's inferred shape: a padded (side + 2)^2 map under an unpadded 3x3 conv
    shapes = _inferred_shapes(model)
    sized = []
    for lv in levels:
        dims = shapes.get(lv.neck, [])
        if len(dims) != 4 or dims[2] != dims[3] or dims[2] <= 2:
            raise GraphError(f"neck tensor {lv.neck} has no static square shape ({dims})")
        side = dims[2] - 2
        if side_in % side:
            raise GraphError(f"neck tensor {lv.neck}: a {side}-cell grid does not divide the {side_in}-px input")
        sized.append(HeadLevel(**{**lv.__dict__, "stride": side_in // side, "side": side}))
    return sorted(sized, key=lambda lv: lv.stride)


def _inferred_shapes(model) -> dict[str, list[int]]:  # type: ignore[no-untyped-def]
    import onnx

    inferred = onnx.shape_inference.infer_shapes(model)
    return {
        v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
        for v in list(inferred.graph.value_info) + list(inferred.graph.output)
    }


def with_outputs(model, names: list[str]):  # type: ignore[no-untyped-def]
    """A copy of the model that also outputs the named inner tensors (the feature tap)."""
    import onnx

    tapped = onnx.ModelProto()
    tapped.CopyFrom(model)
    have = {o.name for o in tapped.graph.output}
    for name in names:
        if name not in have:
            tapped.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    return tapped


@dataclass(frozen=True)
class LevelWeights:
    """A trained head level: 3x3 conv, LeakyRelu, 1x1 conv to classes + 44 box channels."""

    conv3_w: np.ndarray
    conv3_b: np.ndarray
    out_w: np.ndarray  # (classes + 44, C)
    out_b: np.ndarray


def output_names(stride: int) -> tuple[str, str]:
    """The grafted head's outputs at one stride: scores [1, cells, K] and boxes [1, cells, 44]."""
    return f"{GRAFT_PREFIX}/scores_s{stride}", f"{GRAFT_PREFIX}/boxes_s{stride}"


def graft_head(model, levels: list[HeadLevel], trained: list[LevelWeights], n_classes: int):  # type: ignore[no-untyped-def]
    """A copy of the model with a second head on the same neck tensors; the original
    outputs are untouched (bit for bit the same numbers)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    if len(levels) != len(trained):
        raise GraphError(f"{len(trained)} trained levels for a head of {len(levels)}")
    out = onnx.ModelProto()
    out.CopyFrom(model)
    g = out.graph
    split = numpy_helper.from_array(np.asarray([n_classes, BOX_CHANNELS], np.int64), f"{GRAFT_PREFIX}/split")
    g.initializer.append(split)
    for lv, w in zip(levels, trained, strict=True):
        if w.out_w.shape[0] != n_classes + BOX_CHANNELS:
            raise GraphError(f"stride {lv.stride}: {w.out_w.shape[0]} output channels, expected {n_classes}+44")
        p = f"{GRAFT_PREFIX}/s{lv.stride}"
        tensors = {
            f"{p}/conv3_w": w.conv3_w,
            f"{p}/conv3_b": w.conv3_b,
            f"{p}/out_w": w.out_w.reshape(w.out_w.shape[0], -1, 1, 1),
            f"{p}/out_b": w.out_b,
            f"{p}/shape": np.asarray([1, n_classes + BOX_CHANNELS, lv.side * lv.side], np.int64),
        }
        for name, arr in tensors.items():
            dtype = np.int64 if arr.dtype == np.int64 else np.float32
            g.initializer.append(numpy_helper.from_array(np.ascontiguousarray(arr, dtype=dtype), name))
        scores, boxes = output_names(lv.stride)
        g.node.extend(
            [
                helper.make_node(
                    "Conv",
                    [lv.neck, f"{p}/conv3_w", f"{p}/conv3_b"],
                    [f"{p}/conv3"],
                    name=f"{p}/conv3",
                    kernel_shape=[3, 3],
                ),
                helper.make_node("LeakyRelu", [f"{p}/conv3"], [f"{p}/act"], name=f"{p}/act", alpha=lv.alpha),
                helper.make_node(
                    "Conv", [f"{p}/act", f"{p}/out_w", f"{p}/out_b"], [f"{p}/out"], name=f"{p}/out", kernel_shape=[1, 1]
                ),
                helper.make_node("Reshape", [f"{p}/out", f"{p}/shape"], [f"{p}/flat"], name=f"{p}/flat"),
                helper.make_node("Transpose", [f"{p}/flat"], [f"{p}/cells"], name=f"{p}/cells", perm=[0, 2, 1]),
                helper.make_node(
                    "Split", [f"{p}/cells", f"{GRAFT_PREFIX}/split"], [f"{p}/logits", boxes], name=f"{p}/split", axis=2
                ),
                helper.make_node("Sigmoid", [f"{p}/logits"], [scores], name=f"{p}/sigmoid"),
            ]
        )
        cells = lv.side * lv.side
        g.output.append(helper.make_tensor_value_info(scores, TensorProto.FLOAT, [1, cells, n_classes]))
        g.output.append(helper.make_tensor_value_info(boxes, TensorProto.FLOAT, [1, cells, BOX_CHANNELS]))
    onnx.checker.check_model(out)
    return out
