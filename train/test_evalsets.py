"""The Asterisk voice prompts as an evaluation set (evalsets.asterisk_prompts)
and the scorecard's merge of several peers' runs, on small files written
here; the installed packages are not needed."""

import gzip
import json

import evalsets
import scorecard

TEXT = """; Core Asterisk Sounds in English

activated: Activated.
agent-pass: Please enter your password followed by the pound key.
beep: [this is a simple beep tone]
silence/1: (1 second of silence)
dictate/both_help: press * to toggle pause, press # to enter a new dictation filename
digits/20: twenty
letters/dash: dash [-]
conf-adminmenu: Please press 1 to mute or unmute yourself, or 8 to exit.
spy-iax2: IAX (note: does not say "2")
missing-file: This prompt has no recording.
"""


def write_prompts(tmp_path):
    sounds = tmp_path / "en_US_f_Allison"
    for name in ("activated", "agent-pass", "beep", "silence/1", "dictate/both_help", "digits/20",
                 "letters/dash", "conf-adminmenu", "spy-iax2"):
        wav = sounds / f"{name}.wav"
        wav.parent.mkdir(parents=True, exist_ok=True)
        wav.write_bytes(b"")  # only its presence is read here
    text = tmp_path / "core-sounds-en.txt.gz"
    text.write_bytes(gzip.compress(TEXT.encode()))
    return sounds, text


def test_prompt_text_keeps_what_is_spoken():
    assert evalsets.prompt_text("Please press 1, or # to exit.") == "please press one or pound to exit"
    assert evalsets.prompt_text("press * to toggle pause") == "press star to toggle pause"
    assert evalsets.prompt_text("dash [-]") == "dash"
    assert evalsets.prompt_text('IAX (note: does not say "2")') == "iax"
    assert evalsets.prompt_text("[ascending tones]") == ""
    assert evalsets.prompt_text("<beep ascending>") == ""
    assert evalsets.prompt_text("(10 seconds of silence)") == ""


def test_asterisk_prompts_pair_each_recording_with_its_text(tmp_path):
    sounds, text = write_prompts(tmp_path)
    got = {str(p.relative_to(sounds)): ref for _, p, ref in evalsets.asterisk_prompts(sounds, text)}
    assert got == {
        "activated.wav": "activated",
        "agent-pass.wav": "please enter your password followed by the pound key",
        "dictate/both_help.wav": "press star to toggle pause press pound to enter a new dictation filename",
        "digits/20.wav": "twenty",
        "letters/dash.wav": "dash",
        "conf-adminmenu.wav": "please press one to mute or unmute yourself or eight to exit",
        "spy-iax2.wav": "iax",
    }  # tones and silence have nothing to score; a line without a recording is left out
    assert {s for s, _, _ in evalsets.asterisk_prompts(sounds, text)} == {"asterisk-prompts"}


def test_asterisk_prompts_without_the_packages_is_empty(tmp_path):
    assert evalsets.asterisk_prompts(tmp_path / "absent", tmp_path / "absent.txt.gz") == []
    sounds, _ = write_prompts(tmp_path)
    assert evalsets.asterisk_prompts(sounds, tmp_path / "absent.txt.gz") == []


def test_scorecard_merges_peer_runs_set_by_set(tmp_path):
    full, extra = tmp_path / "full.json", tmp_path / "extra.json"
    full.write_text(json.dumps({"engines": {"pocketsphinx": {"sets": {"real-all": {"wer": 0.25},
                                                                      "asterisk-prompts": {"wer": 0.9}}},
                                            "whisper-base": {"sets": {"real-all": {"wer": 0.036}}}}}))
    extra.write_text(json.dumps({"engines": {"pocketsphinx": {"sets": {"asterisk-prompts": {"wer": 0.3}}}}}))
    merged = scorecard.peer_sets([full, extra, tmp_path / "absent.json"])
    assert merged == {"pocketsphinx": {"real-all": {"wer": 0.25}, "asterisk-prompts": {"wer": 0.3}},
                      "whisper-base": {"real-all": {"wer": 0.036}}}
    row = [line for line in scorecard.table(tmp_path, "hark", [full, extra]).splitlines() if "pocketsphinx" in line]
    assert row == ["| pocketsphinx 5 (en-us, streaming) | not run | 25.0% | not run | 30.0% |"]


def test_real_all_is_the_packaged_sets_in_evaluate_and_peers(tmp_path, monkeypatch):
    import peers

    # real_recordings() on a small copy of the packages' layout: every set it names is a packaged one
    ps = tmp_path / "ps"
    (ps / "librivox").mkdir(parents=True)
    (ps / "librivox" / "transcription").write_text("<s> a b </s> (clip1)\n")
    (ps / "cards").mkdir()
    (ps / "cards" / "cards.transcription").write_text("<s> c </s> (001)\n")
    (ps / "goforward.raw").write_bytes(b"")
    alsa = tmp_path / "alsa"
    alsa.mkdir()
    (alsa / "Front_Left.wav").write_bytes(b"")
    (alsa / "Noise.wav").write_bytes(b"")
    codec2 = tmp_path / "hts1a.raw"
    codec2.write_bytes(b"")
    monkeypatch.setattr(evalsets, "PS", ps)
    monkeypatch.setattr(evalsets, "ALSA", alsa)
    monkeypatch.setattr(evalsets, "CODEC2", codec2)
    names = {s for s, _, _ in evalsets.real_recordings()}
    assert names == set(evalsets.PACKAGED_SETS)

    # peers.summarize counts exactly those in real-all
    rows = [{"set": s, "file": f"{s}.wav", "ref": "a b", "hyp": "a b", "audio_s": 1.0, "compute_s": 0.1,
             "final_latency_s": 0.1}
            for s in ("pocketsphinx-cards", "alsa-utils", "speechocean762-test", "asterisk-prompts",
                      "synthetic-test_clean")]
    out = peers.summarize({"utterances": rows})
    assert out["real-all"]["utterances"] == 2
    assert {"speechocean762-test", "asterisk-prompts", "synthetic-test_clean"} <= out.keys()
