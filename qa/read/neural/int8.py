"""The reader's int8-compute graph, derived once from its fp32 graph (issue 16).

``quantize_graph(src, dst)`` reads the fp32 graph ``unpack_weights`` writes and writes one
whose weight matmuls run in int8: weights int8 per output channel (the shipped weights are
int8 per row already, so these are the same numbers), activations quantised at every call to
uint8 (onnxruntime's ``DynamicQuantizeLinear`` → ``MatMulInteger``, fused into
``DynamicQuantizeMatMul``: VNNI or AMX int8 dot products with int32 sums). Attention's own
products (QKᵀ, ·V), softmax, layer norms, GELU and the embeddings stay fp32.

onnxruntime quantises an activation with one scale for the whole tensor: every token of
every window in the batch. One token per window, its first (``<s>``), carries values ~10× the
others' (measured on the seed questions' windows: the FFN's input reaches 35 there, GELU's
output 45, where the median token's largest value is ~2–3), so with one scale the ordinary
tokens keep only a few levels; plain dynamic quantisation moved the top span on 14 % of DRCD
dev questions and cost 2 EM. So each matmul input is first divided by its own per-token maximum
(``Abs`` → ``ReduceMax`` over the hidden axis) and the matmul's output multiplied by it again:
the same product in exact arithmetic, every token now spanning the full uint8 range (the
per-token dynamic quantisation of ZeroQuant / LLM.int8(), written with standard operators).
Measured (docs/performance.md, "The int8 reader"): the logits move by a median 0.22 instead
of 1.1; DRCD dev and the seed set keep fp32's EM (plain int8 lost 2.0 on DRCD dev); the
per-token scaling costs ~20 % more time than plain int8 (21.8 vs 17.9 ms for a batch of two
seed-question windows, fp32 31.3 ms, same run).
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from qa.errors import ModelError

EPS = 1e-6          # a token whose input row is all zeros is divided by this, not by zero


def weight_matmuls(model) -> dict[str, list]:
    """The ``MatMul`` nodes with a constant 2-D weight, grouped by their input tensor (Q, K and V
    share one input), in graph order."""
    shapes = {i.name: tuple(i.dims) for i in model.graph.initializer}
    groups: dict[str, list] = {}
    for n in model.graph.node:
        if n.op_type == "MatMul" and len(shapes.get(n.input[1], ())) == 2:
            groups.setdefault(n.input[0], []).append(n)
    return groups


def scale_per_token(model, min_outputs: int = 16) -> int:
    """In place: divide the input of each weight matmul by its per-token ``max |x|`` and
    multiply the products by it again. Matmuls with fewer than ``min_outputs`` output columns
    (the span head's two) are left as they are. Returns how many inputs were rescaled."""
    from onnx import helper, numpy_helper
    shapes = {i.name: tuple(i.dims) for i in model.graph.initializer}
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 13)
    model.graph.initializer.extend([numpy_helper.from_array(np.array(EPS, np.float32), "per_token.eps"),
                                    numpy_helper.from_array(np.array([-1], np.int64), "per_token.axes")])
    before: dict[str, list] = {}        # a matmul's (new) output name -> nodes to put just before / after it
    after: dict[str, list] = {}
    for x, users in weight_matmuls(model).items():
        if min(shapes[u.input[1]][1] for u in users) < min_outputs:
            continue
        peak = f"{x}.token_max"
        if opset >= 18:     # ReduceMax takes its axes as an input from opset 18, as an attribute before
            reduce = helper.make_node("ReduceMax", [f"{x}.abs", "per_token.axes"], [f"{x}.token_absmax"], keepdims=1)
        else:
            reduce = helper.make_node("ReduceMax", [f"{x}.abs"], [f"{x}.token_absmax"], axes=[-1], keepdims=1)
        for u in users:
            y = u.output[0]
            u.input[0], u.output[0] = f"{x}.per_token", f"{y}.per_token"
            after[u.output[0]] = [helper.make_node("Mul", [f"{y}.per_token", peak], [y])]
        before[users[0].output[0]] = [helper.make_node("Abs", [x], [f"{x}.abs"]), reduce,
                                      helper.make_node("Max", [f"{x}.token_absmax", "per_token.eps"], [peak]),
                                      helper.make_node("Div", [x, peak], [f"{x}.per_token"])]
    ordered = []                        # still in topological order: each Mul right after its matmul
    for n in model.graph.node:
        key = n.output[0] if n.output else ""
        ordered += before.get(key, []) + [n] + after.get(key, [])
    del model.graph.node[:]
    model.graph.node.extend(ordered)
    return len(before)


def quantize_graph(src: Path, dst: Path) -> Path:
    """Write ``dst``: the fp32 graph ``src`` rescaled per token and quantised (see the module
    docstring). Written under a temporary name and renamed into place."""
    try:
        import onnx
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as exc:
        raise ModelError(f"building the int8 reader needs onnx and onnxruntime.quantization ({exc})") from exc
    model = onnx.load(str(src))
    if not scale_per_token(model):
        raise ValueError(f"{src} has no weight matmul to quantise")
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
    logging.disable(logging.WARNING)     # the quantiser's advice on the root logger is not the user's business
    try:
        quantize_dynamic(model, str(tmp), per_channel=True, reduce_range=False, weight_type=QuantType.QInt8,
                         op_types_to_quantize=["MatMul"],
                         # the rescaled tensors have no inferred type: they are all float
                         extra_options={"MatMulConstBOnly": True, "DefaultTensorType": onnx.TensorProto.FLOAT})
        os.replace(tmp, dst)
    finally:
        logging.disable(logging.NOTSET)
        tmp.unlink(missing_ok=True)
    return dst
