"""run.keep_snapshots: long runs keep only the newest step snapshots (the latest and the best stay)."""

from __future__ import annotations

from deconvgan.training import train


def test_only_the_newest_step_snapshots_are_kept(make_config, blobs, tmp_path):
    # a snapshot every 3 steps of 12: steps 3, 6, 9, 12
    train(make_config("train.phases=[{steps: 12}]", "run.keep_snapshots=2"), run_dir=tmp_path / "two", dataset=blobs)
    kept = sorted(p.name for p in (tmp_path / "two" / "snapshots").iterdir())
    assert kept == ["step-0000009.safetensors", "step-0000012.safetensors"]
    assert (tmp_path / "two" / "snapshot.safetensors").is_file()
    train(make_config("train.phases=[{steps: 12}]"), run_dir=tmp_path / "all", dataset=blobs)
    assert len(list((tmp_path / "all" / "snapshots").iterdir())) == 4
