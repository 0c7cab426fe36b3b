"""The one owner of the results store's file layout and of the keys crops are filed under.

Next to the SQLite file `<store>.sqlite` lies `<store>.files/`:

    crops/<face key>/<sha[:2]>/<sha>.png     aligned face crops, by pixel hash
    runs/<run id>/<pair id>.png              a run's swaps in the scoring crop
    runs/<run id>/raw/<pair id>.png          the method's own output when its crop is another convention
    runs/<run id>/clips/<clip id>.webm       a video run's clips: source | target | swap (VP9)
    refstats/                                FID reference statistics, by content
    logs/                                    full tracebacks of unexpected errors
    shards/rank<r>/, shards/merge/           a multi-node run's per-rank shards, until rank 0 merges them

A face key is the crop convention, plus "@<detector>" for detectors other than the default and
"+<policy>" for multi-face policies other than "largest": crops made another way are never reused.
Defaults keep the plain convention name, so stores written before detectors were selectable stay valid.
"""

from __future__ import annotations

from pathlib import Path

DEFAULT_DETECTOR = "dlib_hog"
DEFAULT_MULTI_FACE = "largest"


def face_key(convention: str, detector: str = DEFAULT_DETECTOR, multi_face: str = DEFAULT_MULTI_FACE) -> str:
    """The faces-table / crop-folder key of a convention made with a detector and a multi-face policy."""
    key = convention if detector == DEFAULT_DETECTOR else f"{convention}@{detector}"
    return key if multi_face == DEFAULT_MULTI_FACE else f"{key}+{multi_face}"


def face_key_of_run(config: dict, convention: str) -> str:
    """The face key a run's crops of `convention` were filed under, from the run's resolved config."""
    face = config["face"]
    return face_key(convention, face.get("detector", DEFAULT_DETECTOR), face.get("multi_face", DEFAULT_MULTI_FACE))


def files_dir(store_path: Path) -> Path:
    return store_path.parent / (store_path.stem + ".files")


def crop_path(files: Path, key: str, sha: str) -> Path:
    """key: a face_key, e.g. "ffhq_256" or "ffhq_256@mediapipe"."""
    return files / "crops" / key / sha[:2] / f"{sha}.png"


def run_dir(files: Path, run_id: str) -> Path:
    return files / "runs" / run_id


def swap_path(files: Path, run_id: str, pair_id: str) -> Path:
    return run_dir(files, run_id) / f"{pair_id}.png"


def raw_swap_path(files: Path, run_id: str, pair_id: str) -> Path:
    return run_dir(files, run_id) / "raw" / f"{pair_id}.png"


def clip_video_path(files: Path, run_id: str, clip: str) -> Path:
    return run_dir(files, run_id) / "clips" / f"{clip}.webm"


def refstats_dir(files: Path) -> Path:
    return files / "refstats"


def logs_dir(files: Path) -> Path:
    return files / "logs"


def shards_dir(files: Path) -> Path:
    return files / "shards"
