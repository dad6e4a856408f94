"""train/experiments/compare.py: the issue-4 table and its target line."""

import compare


def row(engine, real, **extra):
    return {"engine": engine, "kind": "k", "params": 4_756_794, "size_mb": 9.65, "macs": "64 M",
            "synth": 0.5, "real": real, **extra}


def test_target_is_the_stricter_of_the_two_bounds():
    rows = [row("hark", 0.688), row("W", 0.054, peer="whisper"), row("p", 0.276, peer="pocketsphinx")]
    line = compare.target(rows)
    assert "(13.8%)" in line and "(10.8%)" in line and line.endswith("i.e. 10.8% or less.")
    rows[1]["real"] = 0.10
    assert compare.target(rows).endswith("i.e. 13.8% or less.")


def test_no_target_without_both_peers():
    assert compare.target([row("hark", 0.7), row("W", 0.05, peer="whisper")]) == ""


def test_table_has_one_line_per_engine():
    text = compare.table([row("hark", 0.688), row("p", 0.277, peer="pocketsphinx", params=None)])
    lines = text.splitlines()
    assert len(lines) == 4
    assert lines[2] == "| hark | k | 4.8 M | 9.7 MB | 64 M | 50.0% | 68.8% |"
    assert "| n/a |" in lines[3]
