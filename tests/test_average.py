"""train.average: the mean of exported generators, refused across architectures."""

import json

import pytest
import torch

from gan_face.generator import UNetGenerator
from train.average import average, main


def _saved(path, seed, **kwargs):
    torch.manual_seed(seed)
    g = UNetGenerator(channels=[8, 16], **kwargs)
    g.save_pretrained(str(path))
    return g


def test_the_average_holds_the_mean_weights_and_loads_strictly(tmp_path):
    a, b = _saved(tmp_path / "a", 0), _saved(tmp_path / "b", 1)
    average([tmp_path / "a", tmp_path / "b"], tmp_path / "soup")
    soup = UNetGenerator.from_pretrained(str(tmp_path / "soup"))
    for name, value in soup.state_dict().items():
        torch.testing.assert_close(value, (a.state_dict()[name] + b.state_dict()[name]) / 2)
    assert json.loads((tmp_path / "soup" / "config.json").read_text()) == json.loads((tmp_path / "a" / "config.json").read_text())
    assert "element-wise mean of" in (tmp_path / "soup" / "README.md").read_text()


def test_different_architectures_are_refused_and_nothing_is_written(tmp_path, capsys):
    _saved(tmp_path / "a", 0)
    _saved(tmp_path / "b", 1, blocks=2)
    with pytest.raises(ValueError, match="different architectures"):
        average([tmp_path / "a", tmp_path / "b"], tmp_path / "soup")
    assert main([str(tmp_path / "soup2"), str(tmp_path / "a"), str(tmp_path / "b")]) == 1
    assert "different architectures" in capsys.readouterr().err
    assert not (tmp_path / "soup").exists() and not (tmp_path / "soup2").exists()
