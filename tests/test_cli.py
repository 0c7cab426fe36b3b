from conftest import bench


def test_print_config_applies_overrides():
    out = bench("run", "--print-config", "--subset", "5", "--set", "engine.batch_size=3", "--method", "classic").stdout
    assert "subset: 5" in out and "batch_size: 3" in out and "- classic" in out and "- source" not in out


def test_unknown_config_key_is_a_clear_error():
    proc = bench("run", "--set", "engine.bach_size=3", "--print-config", check=False)
    assert proc.returncode == 2
    assert "unknown config key 'engine.bach_size'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_unknown_method_is_a_clear_error(tmp_path):
    proc = bench("run", "--method", "nosuch", store=tmp_path / "s.sqlite", check=False)
    assert proc.returncode == 2 and "unknown method 'nosuch'" in proc.stderr and "Traceback" not in proc.stderr


def test_list_methods_and_protocols():
    out = bench("list", "methods").stdout
    for name in ("source", "target", "classic"):
        assert name in out
    out = bench("list", "protocols").stdout
    assert "samples" in out and "72" in out


def test_leaderboard_writes_markdown_csv_and_grid(samples_leaderboard):
    lb, stdout = samples_leaderboard
    md = (lb / "samples.md").read_text()
    assert "| source | 1.000" in md and "samples_grid.png" in md and "hash `" in md
    assert (lb / "samples_grid.png").stat().st_size > 10_000
    csv = (lb / "samples.csv").read_text().splitlines()
    assert csv[0].startswith("protocol,protocol_hash,method,metric,value,ci_low,ci_high")
    # 3 methods x (3 identity + pose/expression/gaze + 8 set-level: FID, FID∞, KID, KID sd, PRD x2, P, R)
    assert len(csv) == 1 + 3 * (3 + 3 + 8)
    assert (lb / "samples_prd.png").stat().st_size > 10_000
    # target frames with each method's swap pasted back: 4 rows x (frame + 3 methods) tiles of 192 px
    from PIL import Image

    assert "samples_frames.png" in md
    assert Image.open(lb / "samples_frames.png").size == (192 * 4, 18 + 192 * 4)
    assert stdout.startswith("# swapbench leaderboard")


def test_method_without_weights_fails_before_any_work(tmp_path):
    store = tmp_path / "s.sqlite"
    proc = bench("run", "--method", "ghost", "--weights-dir", str(tmp_path / "w"), store=store, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    err = " ".join(proc.stderr.split())
    for name in ("G_unet_2blocks.pth", "backbone.pth", "releases/download", str(tmp_path / "w")):
        assert name in err
    assert not (tmp_path / "s.files").exists()  # not a single face was cropped
