"""The Hub mixin with clear errors for broken model folders.

`PyTorchModelHubMixin.from_pretrained` silently falls back to default kwargs when
`config.json` is missing, and surfaces JSON or state-dict errors as long tracebacks. Every
gan-face model loads through `HubModel.from_pretrained`, which checks a local folder first
and turns load failures into one `ValueError` naming the folder and what is wrong.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path

from huggingface_hub import PyTorchModelHubMixin
from safetensors import SafetensorError


class HubModel(PyTorchModelHubMixin):
    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        folder = Path(str(pretrained_model_name_or_path))
        if folder.is_dir():
            check_folder(cls, folder)
        try:
            return super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)
        except (RuntimeError, KeyError, OSError, SafetensorError) as e:  # SafetensorError: a truncated or corrupt file
            detail = " ".join(str(e).split()) or type(e).__name__  # names the mismatched keys, on one line
            raise ValueError(f"cannot load {cls.__name__} from {pretrained_model_name_or_path}: {detail[:2000]}") from e


def check_folder(cls, folder: Path) -> None:
    config = folder / "config.json"
    if not config.is_file():
        raise ValueError(f"{folder} has no config.json: it is not a saved {cls.__name__} (save_pretrained writes one)")
    try:
        values = json.loads(config.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{config} is not valid JSON: {e}") from None
    if not isinstance(values, dict):
        raise ValueError(f"{config} must hold a JSON object of {cls.__name__} keyword arguments")
    known = set(inspect.signature(cls.__init__).parameters) - {"self"}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"{config} has keys {unknown} that {cls.__name__} does not take (it takes {sorted(known)})")
    if not (folder / "model.safetensors").is_file():
        raise ValueError(f"{folder} has no model.safetensors")
