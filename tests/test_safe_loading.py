"""Weights only from safetensors or weights_only torch.load; clear errors for broken folders."""

import hashlib
import json
import pickle

import pytest
import torch

from gan_face import UNetGenerator
from gan_face import weights as weights_module
from gan_face.deblur import DeblurGenerator
from train import checkpoint

TINY = dict(channels=[8, 16], blocks=1)


@pytest.fixture()
def saved(tmp_path):
    UNetGenerator(**TINY).save_pretrained(tmp_path / "g")
    return tmp_path / "g"


def test_missing_config_json(saved):
    (saved / "config.json").unlink()
    with pytest.raises(ValueError, match="has no config.json"):
        UNetGenerator.from_pretrained(saved)


def test_malformed_config_json(saved):
    (saved / "config.json").write_text('{"channels": [8, 16], ')
    with pytest.raises(ValueError, match="not valid JSON"):
        UNetGenerator.from_pretrained(saved)


def test_config_with_unknown_keys_or_bad_values(saved):
    (saved / "config.json").write_text(json.dumps({**TINY, "n_embd": 4}))
    with pytest.raises(ValueError, match=r"\['n_embd'\]"):
        UNetGenerator.from_pretrained(saved)
    (saved / "config.json").write_text(json.dumps({**TINY, "out_scale": 3}))
    with pytest.raises(ValueError, match="out_scale must be 1 or 2"):
        UNetGenerator.from_pretrained(saved)


def test_weights_from_a_different_config_name_the_keys(saved):
    (saved / "config.json").write_text(json.dumps({"channels": [8, 32], "blocks": 1}))
    with pytest.raises(ValueError, match=r"cannot load UNetGenerator .*(down\.0|encoder\.1|size mismatch)"):
        UNetGenerator.from_pretrained(saved, strict=True)


def test_corrupt_weights_file_names_the_folder(saved):
    (saved / "model.safetensors").write_bytes(b"junk")
    with pytest.raises(ValueError, match=r"cannot load UNetGenerator from .*header"):
        UNetGenerator.from_pretrained(saved)


class Payload:
    """A pickle that would create a file if it were ever unpickled."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('pwned')",))


def test_pickled_code_in_a_checkpoint_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "checkpoint.pt"
    with open(evil, "wb") as f:
        pickle.dump({"step": Payload(marker)}, f)
    with pytest.raises(ValueError, match="not a readable gan-face checkpoint"):
        checkpoint.load(evil)
    torch.save({"model": {"x": Payload(marker)}}, tmp_path / "fpn_mobilenet.h5")
    with pytest.raises(ValueError, match="not a readable torch checkpoint"):
        DeblurGenerator.from_official(tmp_path / "fpn_mobilenet.h5")
    assert not marker.exists()


def test_downloads_are_checked_against_the_pinned_sha256(tmp_path, monkeypatch):
    monkeypatch.setattr(weights_module, "CACHE", tmp_path / "cache")
    source = tmp_path / "upstream.bin"
    source.write_bytes(b"weights" * 1000)
    good = hashlib.sha256(source.read_bytes()).hexdigest()
    url = source.as_uri()  # a file:// URL: the same download code, no network
    with pytest.raises(ValueError, match="refusing to use it"):
        weights_module.fetch("model.bin", url, "0" * 64, tmp_path / "empty")
    assert not list((tmp_path / "cache" / "weights").iterdir())  # nothing half-written or unchecked kept
    path = weights_module.fetch("model.bin", url, good, tmp_path / "empty")
    assert path.read_bytes() == source.read_bytes()
    with pytest.raises(FileNotFoundError, match="downloads are off"):
        weights_module.fetch("other.bin", url, good, tmp_path / "empty", download=False)
