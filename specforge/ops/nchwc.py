"""Convolutions on onnxruntime's NCHWc kernels, fed the current weights at every call.

onnxruntime (already a dependency, for export and predict) carries MLAS, whose direct convolution
kernels work on channels in blocks of the vector width ("NCHWc": ``(N, C/B, H, W, B)``, B = 16
with AVX-512, 8 with AVX2). Its graph optimizer rewrites an exported model's convolutions to those
kernels, the ``com.microsoft.nchwc`` operators; unlike the standard ``Conv`` they read the filter
as an ordinary input at every run, already in their blocked order. So a training step can run
them on weights that change every batch: the filter (a few thousand numbers) is reordered here
in numpy, and the activations enter and leave in NHWC through ``ReorderInput`` and
``ReorderOutput`` with ``channels_last``. On the seed model's second convolution they run at
about 95% of the machine's single-core GEMM rate, where the best numpy formulation (one matrix
product per kernel tap, :mod:`specforge.ops.taps`) reaches about 40%.

One session per convolution geometry serves every batch size (the batch axis is symbolic); it
runs on one thread, and the caller splits the batch across cores (:mod:`specforge.ops.parallel`).
MLAS on one thread sums in a fixed order, so results repeat from run to run. The input gradient
of a convolution is itself such a convolution (of the output gradient, with the kernel flipped
and its channel axes swapped), so it runs here too; the kernel gradient, a product summed over
the batch and the pixels rather than a convolution, stays in numpy.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from specforge.ops.im2col import spread_gradient
from specforge.ops.window import Window

_DOMAIN = "com.microsoft.nchwc"
_lock = threading.RLock()  # re-entered: making a session asks for the block size, which may make the probe's


@lru_cache(maxsize=1)
def block_size() -> int:
    """The NCHWc block (channels per vector) of this machine; 1 where MLAS has no NCHWc kernels
    or onnxruntime cannot run them."""
    try:
        session = _session(_Geometry(kind="probe"))
        return int(session.run(None, {"x": np.zeros((1, 1, 1, 4), np.float32)})[0].shape[1])
    except Exception:
        return 1


@dataclass(frozen=True)
class _Geometry:
    """What one session is built for: a convolution (``kind="conv"``) of ``channels`` inputs to
    ``filters`` outputs with a kernel of ``kernel`` (depthwise: one per channel), or the block-size
    ``probe``."""

    kind: str
    channels: int = 0
    filters: int = 0
    kernel: tuple[int, int] = (1, 1)
    strides: tuple[int, int] = (1, 1)
    dilation: tuple[int, int] = (1, 1)
    pads: tuple[int, int, int, int] = (0, 0, 0, 0)
    relu: bool = False
    bias: bool = False
    depthwise: bool = False


def supports(groups: int, channels: int, filters: int, dtype: np.dtype) -> bool:
    """Whether a convolution's forward and input gradient run here: float32, and either one group
    with input and output channels the kernels take (fewer than a block, read unblocked, or a
    multiple of 4, blocked on the way in), or depthwise with one output per channel, a multiple of 4."""
    if dtype != np.float32 or block_size() == 1:
        return False
    if groups == 1:
        return _takes(channels) and _takes(filters)
    return groups == channels == filters and channels % 4 == 0


def _takes(channels: int) -> bool:
    return channels < block_size() or channels % 4 == 0


def forward(
    x: np.ndarray,
    kernel: np.ndarray,
    bias: np.ndarray | None,
    window: Window,
    relu: bool,
    out: np.ndarray,
    depthwise: bool = False,
    blocked: np.ndarray | None = None,
) -> None:
    """Write to ``out`` (N, OH, OW, Cout) the convolution of NHWC ``x`` with ``kernel`` as Keras stores it
    ((KH, KW, Cin, Cout), or depthwise (KH, KW, C, 1)), plus ``bias``, through ReLU when ``relu``; ``blocked``
    is the kernel already in the order the kernels read (:func:`forward_filter`), where the caller reordered
    it once for every shard of a batch."""
    kh, kw, channels, filters = kernel.shape
    filters = channels if depthwise else filters
    top, left, bottom, right = window.onnx_pads
    geometry = _Geometry(
        "conv",
        channels,
        filters,
        (kh, kw),
        window.strides,
        window.dilation,
        (top, left, bottom, right),
        relu,
        bias is not None,
        depthwise,
    )
    feeds = {"x": x, "w": forward_filter(kernel, depthwise) if blocked is None else blocked}
    if bias is not None:
        feeds["b"] = _padded(bias, 0, _round_up(filters))
    _run(geometry, feeds, out)


def input_gradient(
    dz: np.ndarray,
    kernel: np.ndarray,
    window: Window,
    out: np.ndarray,
    depthwise: bool = False,
    blocked: np.ndarray | None = None,
) -> None:
    """Write to ``out`` (N, H, W, Cin) the gradient of the input of :func:`forward`, from ``dz``
    (N, OH, OW, Cout), the gradient of its output before the bias (``blocked``: :func:`gradient_filter`, where
    the caller made it once for every shard).

    It is the full correlation of ``dz`` with the kernel flipped and its channel axes swapped (a
    depthwise kernel has nothing to swap): at stride 1 the padding does it; with strides ``dz`` is
    first spread out with zeros between (as the numpy input gradient does).
    """
    kh, kw, channels, filters = kernel.shape
    filters = channels if depthwise else filters
    (eh, ew), ((top, bottom), (left, right)) = window.effective, window.pads
    if window.strides == (1, 1):
        pads = (eh - 1 - top, ew - 1 - left, eh - 1 - bottom, ew - 1 - right)
    else:
        dz, pads = spread_gradient(dz, window, out.shape[1:3]), (0, 0, 0, 0)
    geometry = _Geometry("conv", filters, channels, (kh, kw), (1, 1), window.dilation, pads, depthwise=depthwise)
    _run(geometry, {"x": dz, "w": gradient_filter(kernel, depthwise) if blocked is None else blocked}, out)


def forward_filter(kernel: np.ndarray, depthwise: bool = False) -> np.ndarray:
    """``kernel``, as Keras stores it, in the order :func:`forward` reads it."""
    transposed = kernel.transpose(2 if depthwise else 3, 3 if depthwise else 2, 0, 1)
    return _blocked_filter(transposed, kernel.shape[2], depthwise)


def gradient_filter(kernel: np.ndarray, depthwise: bool = False) -> np.ndarray:
    """``kernel`` flipped, its channel axes swapped, in the order :func:`input_gradient` reads it."""
    flipped = kernel[::-1, ::-1].transpose(2, 3, 0, 1)  # (Cin, Cout, KH, KW); depthwise (C, 1, KH, KW)
    return _blocked_filter(flipped, kernel.shape[2] if depthwise else kernel.shape[3], depthwise)


# -- layouts ----------------------------------------------------------------------------------------
def _round_up(count: int) -> int:
    block = block_size()
    return -(-count // block) * block


def _padded(array: np.ndarray, axis: int, size: int) -> np.ndarray:
    """``array`` with zeros appended along ``axis`` up to ``size``."""
    if array.shape[axis] == size:
        return np.ascontiguousarray(array, dtype=np.float32)
    widths = [(0, 0)] * array.ndim
    widths[axis] = (0, size - array.shape[axis])
    return np.pad(array.astype(np.float32, copy=False), widths)


def _blocked_filter(oihw: np.ndarray, channels: int, depthwise: bool = False) -> np.ndarray:
    """An (O, I, KH, KW) filter in the order the NCHWc kernel reads it, outputs padded to whole blocks.

    Blocked inputs (``channels`` at least a block): ``(O/B, I/B, KH, KW, Bi, Bo)``, inputs padded to
    whole blocks too. Unblocked inputs (fewer than a block) and depthwise filters (I = 1):
    ``(O/B, I, KH, KW, Bo)``.
    """
    block = block_size()
    out_channels, in_channels, kh, kw = oihw.shape
    filters = _padded(oihw, 0, _round_up(out_channels))
    if channels < block or depthwise:
        blocked = filters.reshape(-1, block, in_channels, kh, kw).transpose(0, 2, 3, 4, 1)
    else:
        filters = _padded(filters, 1, _round_up(in_channels))
        blocked = filters.reshape(-1, block, filters.shape[1] // block, block, kh, kw).transpose(0, 2, 4, 5, 3, 1)
    return np.ascontiguousarray(blocked).reshape(filters.shape)


# -- sessions ---------------------------------------------------------------------------------------
def _run(geometry: _Geometry, feeds: dict[str, np.ndarray], out: np.ndarray) -> None:
    """Run the session for ``geometry`` on ``feeds``, its result written straight into ``out`` (a
    C-contiguous float32 array of the result's shape): bound buffers, so nothing is copied on the way."""
    session = _session(geometry)
    binding = session.io_binding()
    for name, value in feeds.items():
        binding.bind_cpu_input(name, np.ascontiguousarray(value))
    binding.bind_output("y", "cpu", 0, np.float32, list(out.shape), out.ctypes.data)
    session.run_with_iobinding(binding)


_sessions: dict[_Geometry, object] = {}


def _session(geometry: _Geometry):
    """The session for ``geometry``, made on first use (one per process and geometry)."""
    session = _sessions.get(geometry)
    if session is None:
        with _lock:
            session = _sessions.get(geometry)
            if session is None:
                session = _sessions[geometry] = _make_session(geometry)
    return session


def _make_session(geometry: _Geometry):
    import onnxruntime as ort
    from onnx import TensorProto, helper

    def value(name: str):
        return helper.make_tensor_value_info(name, TensorProto.FLOAT, None)

    if geometry.kind == "probe":
        nodes = [helper.make_node("ReorderInput", ["x"], ["y"], domain=_DOMAIN, channels_last=1)]
        inputs = [value("x")]
    else:
        nodes, inputs = _conv_nodes(geometry, helper), [value(name) for name in ("x", "w", "b")[: 2 + geometry.bias]]
    graph = helper.make_graph(nodes, "nchwc", inputs, [value("y")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(_DOMAIN, 1)])
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(model.SerializeToString(), sess_options=options, providers=["CPUExecutionProvider"])


def _conv_nodes(geometry: _Geometry, helper) -> list:
    """NHWC in, NCHWc convolution, NHWC out. Fewer input channels than a block are read unblocked,
    NCHW (except depthwise, whose channels are its groups: all of them padded to whole blocks)."""
    if geometry.channels >= block_size() or geometry.depthwise:
        nodes = [helper.make_node("ReorderInput", ["x"], ["xc"], domain=_DOMAIN, channels_last=1)]
    else:
        nodes = [helper.make_node("Transpose", ["x"], ["xc"], perm=[0, 3, 1, 2])]
    attributes: dict[str, Any] = {
        "kernel_shape": list(geometry.kernel),
        "strides": list(geometry.strides),
        "dilations": list(geometry.dilation),
        "pads": list(geometry.pads),
    }
    if geometry.depthwise:
        attributes["group"] = _round_up(geometry.channels)
    if geometry.relu:
        attributes["activation"] = "Relu"
    conv_inputs = ["xc", "w", "b"][: 2 + geometry.bias]
    nodes.append(helper.make_node("Conv", conv_inputs, ["yc"], domain=_DOMAIN, **attributes))
    nodes.append(
        helper.make_node("ReorderOutput", ["yc"], ["y"], domain=_DOMAIN, channels_last=1, channels=geometry.filters)
    )
    return nodes
