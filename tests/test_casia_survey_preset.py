"""configs/casia_survey.yaml: the CASIA face-swapping survey's models as swapbench has them, on its pair files."""

from pathlib import Path

from swapbench import metrics
from swapbench.bench import config
from swapbench.datasets.user import csv_protocol

PRESET = Path(__file__).parent.parent / "configs" / "casia_survey.yaml"


def test_preset_names_the_survey_models():
    cfg = config.load([PRESET], config.parse_set([]))
    assert cfg["metrics"]["identity"] == "cosface_sphere20_casia"
    assert metrics.backend_class(cfg["metrics"]["identity"]).dim == 1024  # face + mirror, the survey's feature
    assert cfg["metrics"]["pose"] == "hopenet" and cfg["metrics"]["expression"] == "deep3d_exp"
    assert cfg["fid"]["policy"] == "legacy_torch"  # pytorch-fid's input, as the survey's pytorch_fid_new
    assert cfg["protocol"] == "csv:casia_normal.csv" and cfg["methods"] == ["inswapper", "blendswap"]


def test_survey_pair_file_as_the_documented_csv(tmp_path):
    """The preset's awk line, done in Python on three survey lines: identity = the video id before the first '-'."""
    lines = ["0041-0_0.png 1268-0_0.png\r", "0041-0_1.png 1268-0_1.png\r", "1268-0_0.png 0041-0_0.png\r"]  # CRLF
    rows = ["source,target,source_identity,target_identity"]
    rows += [f"{s},{t},{s.split('-')[0]},{t.split('-')[0]}" for s, t in (line.rstrip("\r").split() for line in lines)]
    (tmp_path / "casia_normal.csv").write_text("\n".join(rows) + "\n")
    protocol = csv_protocol(str(tmp_path / "casia_normal.csv"), None)
    assert len(protocol.pairs) == 3
    first = protocol.pairs[0]
    assert (first.source, first.target) == ("0041-0_0", "1268-0_0")
    assert protocol.images["0041-0_0"].identity == protocol.images["0041-0_1"].identity == "0041"
    assert protocol.images["1268-0_0"].identity == "1268"
    assert "sub(/\\r$/" in PRESET.read_text() and "s[1]" in PRESET.read_text()  # the conversion the preset documents
