"""benchmarks/throughput.py's arguments and device placement (on the CPU), and tools/offline_wheels.py."""

import importlib.util
import subprocess
import sys

import pytest
import torch
from conftest import REPO

from swapbench.datasets import get_protocol


def _module(path, name):
    sys.path.insert(0, str(path.parent))
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def throughput():
    return _module(REPO / "benchmarks" / "throughput.py", "throughput_script")


@pytest.fixture(scope="module")
def wheels():
    return _module(REPO / "tools" / "offline_wheels.py", "offline_wheels")


def test_arguments(throughput):
    args = throughput.parse_args([])
    assert (args.accelerator, args.devices, args.methods, args.metrics) == ("cpu", 1, ["classic"], None)
    args = throughput.parse_args(["--accelerator", "gpu", "--methods", "ghost", "classic", "--metrics",
                                  "identity=dlib_resnet_v1", "--devices", "2"])
    assert (args.accelerator, args.devices, args.methods) == ("gpu", 2, ["ghost", "classic"])
    for bad in (["--accelerator", "tpu"], ["--metrics", "identity"], ["--devices", "0"]):
        with pytest.raises(SystemExit):
            throughput.parse_args(bad)
    cfg = throughput.run_config("samples", args, "/tmp/x.sqlite")
    assert cfg["engine"]["accelerator"] == "gpu" and cfg["engine"]["devices"] == 2
    assert cfg["metrics"] == {"identity": "dlib_resnet_v1"}


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
def test_gpu_without_cuda_stops_before_any_work(throughput):
    with pytest.raises(SystemExit, match="no CUDA device"):
        throughput.main(["--accelerator", "gpu"])


def test_models_and_inputs_go_to_the_chosen_device(throughput, tmp_path):
    args = throughput.parse_args(["--accelerator", "cpu"])
    cfg = throughput.run_config("samples", args, tmp_path / "r.sqlite")
    device = throughput.device_of("cpu")
    backend = throughput.build_backend("fid_helper_inception", cfg, device)
    assert backend.device == device
    assert {t.device.type for t in [*backend.module.parameters(), *backend.module.buffers()]} == {"cpu"}
    method = throughput.build_method("classic", cfg, device)
    assert method.device == device and not method.training


def test_one_small_run_prints_one_table(throughput, capsys):
    throughput.main(["--accelerator", "cpu", "--subset", "2", "--synthetic-pairs", "0", "--naive-pairs", "0",
                     "--metrics", "pose=mediapipe_pose", "--num-workers", "1"])
    out = capsys.readouterr().out
    assert "| stage | engine time (s) | model forward (s) |" in out
    assert "| swap/classic |" in out and "| features/mediapipe_pose |" in out
    assert "naive way: not measured" in out
    assert len(get_protocol("samples").pairs) == 72  # the script's 2-pair subset did not replace `samples`


def test_wheel_closure_leaves_torch_out(wheels):
    pins = wheels.closure("swapbench")
    assert "torch" not in pins and not any(n.startswith("nvidia-") or n == "triton" for n in pins)
    assert {"lightning", "torchmetrics", "mediapipe", "dlib-bin", "pyyaml"} <= set(pins)
    assert "swapbench" not in pins
    assert "pytest" not in pins and "pytest" in wheels.closure("swapbench", ("test",))


def test_wheel_folder_installs_without_an_index(wheels, tmp_path):
    folder = tmp_path / "wheels"
    assert wheels.main([str(folder), "--packages", "platformdirs", "pyyaml"]) == 0
    assert len(list(folder.glob("*.whl"))) == 2
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-index",
                    "--find-links", str(folder), "-r", str(folder / "requirements.txt")], check=True)
    subprocess.run([python, "-c", "import platformdirs, yaml"], check=True)
