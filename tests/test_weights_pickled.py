"""The pickled_module weight format: whole pickled models opened with inert stand-ins, never their code.

The two layouts of SimSwap's arcface_checkpoint.tar are built here from small classes with the same
module and class names as foamliu/InsightFace-v2's (`models.ResNet`, `models.IRBlock`, `models.SEBlock`,
`models.ArcMarginModel`): the 2020 training dict {'epoch', 'epochs_since_improvement', 'acc',
'model': DataParallel(ResNet), 'metric_fc': ArcMarginModel, 'optimizer': SGD with momentum state} and
the 2023 bare ResNet. They are loaded after `models` is gone from sys.modules, so nothing of the file's
classes can be imported or run.
"""

import os
import sys
import types

import pytest
import torch
from torch import nn

from swapbench import weights
from swapbench.weights import WeightFile, WeightsError

TORCH_MODULES = tuple(f"torch.nn.modules.{name}" for name in (
    "activation.PReLU", "activation.Sigmoid", "batchnorm.BatchNorm1d", "batchnorm.BatchNorm2d",
    "container.Sequential", "conv.Conv2d", "dropout.Dropout", "linear.Linear", "pooling.AdaptiveAvgPool2d",
    "pooling.MaxPool2d"))
BARE = ("models.ResNet", "models.IRBlock", "models.SEBlock", *TORCH_MODULES)
TRAINING = (*BARE, "models.ArcMarginModel", "torch.nn.parallel.data_parallel.DataParallel", "torch.optim.sgd.SGD",
            "collections.defaultdict", "builtins.dict")


def _foamliu_classes():
    """foamliu's ResNet/IRBlock/SEBlock layout in miniature (one IR block with SE, shared PReLU)."""

    class SEBlock(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.avg_pool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Sequential(nn.Linear(c, 2), nn.PReLU(), nn.Linear(2, c), nn.Sigmoid())

    class IRBlock(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.bn0, self.conv1, self.prelu = nn.BatchNorm2d(c), nn.Conv2d(c, c, 3, padding=1, bias=False), nn.PReLU()
            self.se = SEBlock(c)

    class ResNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1, self.bn1, self.prelu = nn.Conv2d(3, 4, 3, bias=False), nn.BatchNorm2d(4), nn.PReLU()
            self.maxpool, self.layer1 = nn.MaxPool2d(2), nn.Sequential(IRBlock(4), IRBlock(4))
            self.bn2, self.dropout, self.fc, self.bn3 = nn.BatchNorm2d(4), nn.Dropout(), nn.Linear(4, 8), nn.BatchNorm1d(8)

    class ArcMarginModel(nn.Module):
        def __init__(self):
            super().__init__()
            self.weight, self.m = nn.Parameter(torch.randn(5, 8)), 0.5

    return SEBlock, IRBlock, ResNet, ArcMarginModel


@pytest.fixture
def arcface_files(tmp_path, monkeypatch):
    """(bare file, training-dict file, the same in the legacy serialization, the model's state dict);
    `models` is unimportable afterwards."""
    monkeypatch.setattr(weights.platformdirs, "user_cache_dir", lambda *a, **k: str(tmp_path / "cache"))
    models = types.ModuleType("models")
    for cls in _foamliu_classes():
        cls.__module__, cls.__qualname__ = "models", cls.__name__
        setattr(models, cls.__name__, cls)
    with monkeypatch.context() as m:
        m.setitem(sys.modules, "models", models)
        torch.manual_seed(0)
        net, arc = models.ResNet(), models.ArcMarginModel()
        for bn in (net.bn1, net.bn3):  # running statistics that differ from their defaults
            bn.running_mean.uniform_(-1, 1)
            bn.num_batches_tracked += 7
        opt = torch.optim.SGD([{"params": net.parameters()}, {"params": arc.parameters()}], lr=0.1, momentum=0.9)
        for p in [*net.parameters(), *arc.parameters()]:
            p.grad = torch.ones_like(p)
        opt.step()  # fills the optimizer's momentum state (a defaultdict keyed by parameters)
        torch.save(net, tmp_path / "bare.tar")
        checkpoint = {"epoch": 3, "epochs_since_improvement": 0, "acc": 0.9, "model": nn.DataParallel(net),
                      "metric_fc": arc, "optimizer": opt}
        torch.save(checkpoint, tmp_path / "training.tar")
        # torch < 1.6 wrote the legacy (non-zip) serialization; a 2020 file may be either
        torch.save(checkpoint, tmp_path / "legacy.tar", _use_new_zipfile_serialization=False)  # noqa
        expected = {k: v.clone() for k, v in net.state_dict().items()}
    assert "models" not in sys.modules
    return tmp_path / "bare.tar", tmp_path / "training.tar", tmp_path / "legacy.tar", expected


def card(filename, classes):
    return WeightFile(name=f"test/{filename}", filename=filename, url="https://example.org/" + filename,
                      licence="test", format="pickled_module", pickle_classes=classes)


def test_both_simswap_arcface_layouts_load_to_the_model_state_dict(arcface_files, tmp_path):
    bare, training, legacy, expected = arcface_files
    for path, classes in ((bare, BARE), (training, TRAINING), (legacy, TRAINING)):
        state = weights.load(card(path.name, classes), path)
        assert list(state) == list(expected), path.name
        for key, value in expected.items():
            assert torch.equal(state[key], value), (path.name, key)
    assert "models" not in sys.modules  # the file's classes were never imported
    # each conversion is cached as safetensors under the file's sha256, and read from there next time
    cached = list((tmp_path / "cache" / weights.CONVERTED_DIR).glob("pickled_module-*.safetensors"))
    assert sorted(c.name.split("-")[-1] for c in cached) == sorted(
        f"{weights.sha256_of(p)[:32]}.safetensors" for p in (bare, training, legacy))
    again = weights.load(card(bare.name, BARE), bare)
    assert all(torch.equal(again[k], v) for k, v in expected.items())


def test_a_class_outside_the_allow_list_is_refused_by_name(arcface_files):
    bare, training, _, _ = arcface_files
    with pytest.raises(WeightsError) as err:
        weights.load(card(bare.name, tuple(c for c in BARE if c != "models.SEBlock")), bare)
    assert "bare.tar" in str(err.value) and "models.SEBlock" in str(err.value)
    with pytest.raises(WeightsError) as err:  # the training dict needs DataParallel, the optimizer...
        weights.load(card(training.name, BARE), training)
    assert "refused" in str(err.value) and "https://example.org/training.tar" in str(err.value)


class Payload:
    """Unpickling this runs a shell command of the file's choosing."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.mark.parametrize("zip_format", [True, False])
def test_an_os_system_payload_is_refused_and_never_run(tmp_path, monkeypatch, zip_format):
    monkeypatch.setattr(weights.platformdirs, "user_cache_dir", lambda *a, **k: str(tmp_path / "cache"))
    marker = tmp_path / "ran"
    path = tmp_path / "evil.tar"
    torch.save({"model": Payload(marker)}, path, _use_new_zipfile_serialization=zip_format)
    with pytest.raises(WeightsError) as err:
        weights.load(card("evil.tar", TRAINING), path)
    assert "posix.system" in str(err.value) and "evil.tar" in str(err.value), str(err.value)
    assert not marker.exists()
    # even a declaration that lists it gets an inert stand-in, never the function
    with pytest.raises(WeightsError, match="not a pickled nn.Module"):
        weights.load(card("evil.tar", (*TRAINING, "posix.system")), path)
    assert not marker.exists()
    assert not list((tmp_path / "cache").rglob("*.safetensors"))


def test_a_plain_state_dict_is_not_a_pickled_module(tmp_path, monkeypatch):
    monkeypatch.setattr(weights.platformdirs, "user_cache_dir", lambda *a, **k: str(tmp_path / "cache"))
    torch.save({"w": torch.ones(2)}, tmp_path / "sd.pth")
    with pytest.raises(WeightsError, match="not a readable pickled model"):
        weights.load(card("sd.pth", BARE), tmp_path / "sd.pth")
    assert "pickled_module" in weights.FORMATS
