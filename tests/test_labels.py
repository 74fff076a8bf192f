"""Built-in label sets match the public class lists; custom labels are validated."""

import pytest

from conftest import REFERENCE_LABELS
from kgclip_core.errors import LabelError
from kgclip_core.labels import builtin_label_sets, display_name, label_set_of, load_label_set, parse_labels


@pytest.mark.parametrize("name", ["kinetics400", "ucf101", "hmdb51", "kinetics_tps24"])
def test_builtin_lists_match_reference(name):
    ref = REFERENCE_LABELS / f"{name}.txt"
    if not ref.is_file():
        pytest.skip("../shared/reference is not beside the repository")
    expected = [line for line in ref.read_text(encoding="utf-8").splitlines() if line.strip()]
    label_set = load_label_set(name)
    assert list(label_set.classes) == expected
    assert label_set.builtin and len(set(label_set.classes)) == len(expected)


def test_builtin_sizes():
    assert {n: len(load_label_set(n)) for n in ["kinetics400", "ucf101", "hmdb51", "kinetics_tps24"]} == {
        "kinetics400": 400, "ucf101": 101, "hmdb51": 51, "kinetics_tps24": 24}
    assert {"kinetics400", "ucf101", "hmdb51", "kinetics_tps24"} <= set(builtin_label_sets())


@pytest.mark.parametrize("raw, shown", [
    ("ApplyEyeMakeup", "Apply Eye Makeup"), ("YoYo", "Yo Yo"), ("climb_stairs", "climb stairs"),
    ("hurling (sport)", "hurling (sport)"), ("BlowDryHair", "Blow Dry Hair"), ("TaiChi", "Tai Chi"),
])
def test_display_name(raw, shown):
    assert display_name(raw) == shown


def test_ucf_display_names_are_readable():
    label_set = load_label_set("ucf101")
    assert label_set.display_names[0] == "Apply Eye Makeup"
    assert label_set.index("Apply Eye Makeup") == label_set.index("ApplyEyeMakeup") == 0


def test_custom_labels_from_text_and_file(tmp_path):
    assert parse_labels("playing guitar, riding a horse").classes == ("playing guitar", "riding a horse")
    assert parse_labels("a\nb, with comma\n\n").classes == ("a", "b, with comma")
    f = tmp_path / "mine.txt"
    f.write_text("jump\nrun\n", encoding="utf-8")
    label_set = load_label_set(str(f))
    assert label_set.classes == ("jump", "run") and label_set.name == "mine" and not label_set.builtin


@pytest.mark.parametrize("bad", ["", " , ,", "run, Run", "!!!, jump", "x" * 300])
def test_bad_custom_labels(bad):
    with pytest.raises(LabelError):
        parse_labels(bad)


def test_unknown_label_set_names_the_choices(tmp_path):
    with pytest.raises(LabelError, match="kinetics400"):
        load_label_set("kinetics-700")
    with pytest.raises(LabelError, match="does not exist"):
        load_label_set(str(tmp_path / "missing.txt"))


def test_label_set_of_names_builtin_and_custom_sets():
    ucf = load_label_set("ucf101")
    assert label_set_of(list(ucf.classes)) == ucf
    mine = label_set_of(["run", "jump"], name="my_ckpt")
    assert mine.name == "my_ckpt" and mine.classes == ("run", "jump") and not mine.builtin
