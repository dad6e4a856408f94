import json

import gamescript as gs
from test_realdata import queen_1c


def _lp(text: bytes) -> bytes:
    """A length-prefixed string as the game stores it."""
    return bytes([len(text)]) + text


def test_script_lines_drop_codes_stage_directions_and_glued_length_bytes(tmp_path):
    dog = (b"AmBk\0\x0f" + _lp(b"At least I don't look like I need to wear one.*15") + b"\0\0"
           + _lp(b"*FRIf we don't get back to the hangar, we're sunk!*02") + b"\0")
    cut = b"\0\x07" + _lp(b"*FLIt's locked...*05(sigh)*10My one chance to meet her,*00gone.*14") + b"\0"
    path = queen_1c(tmp_path / "queen.1c", [(b"AND1.DOG", dog), (b"C70D.CUT", cut),
                                             (b"X.SB", b"ID3 not text at all, skipped")])
    lines = gs.script_lines(path)
    assert "at least i don't look like i need to wear one" in lines
    assert "if we don't get back to the hangar we're sunk" in lines  # '1' + "*FR" gone
    # the bubbles of one string, joined (the length byte "B" glued on: the alignment's free start skips it)
    assert "b it's locked my one chance to meet her gone" in lines
    assert not any("sigh" in line or "skipped" in line for line in lines)


def test_span_distance_finds_the_part_of_a_line():
    ref = "you couldn't fight your way out of a paper bag".split()
    assert gs.span_distance("your way out of".split(), ref) == (0, 3, 7)
    dist, start, end = gs.span_distance("you couldn't fight you way".split(), ref)
    assert (dist, start, end) == (1, 0, 5)


def test_snap_takes_the_script_when_the_teacher_agrees_and_keeps_the_rest_as_before():
    script = gs.Script(["at least i don't look like i need to wear one",
                        "you couldn't fight your way out of a paper bag"])
    rows = [
        # the teacher misheard one word of eleven: the script's words train
        {"teacher": "at least i don't look like i need to where one", "teacher_prob": 0.9, "label": "none"},
        # a part of a line (a clip "P2" of a longer line)
        {"teacher": "out of a paper bag", "teacher_prob": 0.9, "label": "none"},
        # not in the script: the teacher's decision stands (probability >= 0.6)
        {"teacher": "something else entirely here", "teacher_prob": 0.8, "label": "none"},
        {"teacher": "something else entirely", "teacher_prob": 0.3, "label": "none"},
        # no words heard
        {"teacher": "", "teacher_prob": 0.0, "label": "none"},
        {"split": "train", "label": "none"},  # never labelled: untouched
    ]
    out = json.loads(json.dumps(rows))
    stats = gs.snap(out, script, max_dis=0.25, min_prob=0.6)
    assert out[0]["text"] == "at least i don't look like i need to wear one" and out[0]["label"] == "script"
    assert out[0]["keep"] and out[0]["script_agreement"] == round(1 - 1 / 11, 3)
    assert out[1]["text"] == "out of a paper bag" and out[1]["keep"]
    assert out[2]["label"] == "none" and out[2]["text"] == "something else entirely here" and out[2]["keep"]
    assert not out[3]["keep"] and not out[4]["keep"]
    assert out[5] == rows[5]
    assert stats["labelled"] == 5 and stats["matched"] == 2 and stats["exact"] == 1
    # rerunning starts again from the teacher's fields: the same result
    again = json.loads(json.dumps(out))
    assert gs.snap(again, script, max_dis=0.25, min_prob=0.6) == stats and again == out


def test_a_length_byte_glued_to_a_word_gives_way_to_the_teachers_word():
    script = gs.Script(["ubut thanks to you the shield is off", "but we must go", "thanks to you"])
    agreement, span = script.best_span("but thanks to you the shield is off".split())
    assert (agreement, span) == (1.0, "but thanks to you the shield is off")
