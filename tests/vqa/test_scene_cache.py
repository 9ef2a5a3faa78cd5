"""The scene cache trusts nothing it reads back: a damaged or foreign file is regenerated, never trained on."""
from __future__ import annotations

import numpy as np
import pytest

from w2v.vqa.questions import ANSWER_NAMES, SceneSpec
from w2v.vqa.scene_cache import cache_file, load_or_generate

SPEC = SceneSpec(train=12, test=4, test_paraphrase=4, image_size=16, seed=3)


def truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def not_a_zip(path):
    path.write_bytes(b"PK\x03\x04" + b"\x00" * 100)


def answers_out_of_range(path):
    with np.load(path) as archive:
        arrays = dict(archive)
    arrays["train/answers"] = arrays["train/answers"] + len(ANSWER_NAMES)
    np.savez(path, **arrays)


def wrong_image_size(path):
    with np.load(path) as archive:
        arrays = dict(archive)
    arrays["test/images"] = arrays["test/images"][:, :8]
    np.savez(path, **arrays)


def flipped_bytes_in_a_member_header(path):
    data = bytearray(path.read_bytes())
    at = data.index(b"NUMPY") + 20
    data[at:at + 8] = b"\xff" * 8
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", [truncate, not_a_zip, answers_out_of_range, wrong_image_size,
                                    flipped_bytes_in_a_member_header])
def test_a_damaged_scene_cache_is_regenerated(tmp_path, damage):
    first = load_or_generate(SPEC, tmp_path, log=lambda m: None)
    path = cache_file(SPEC, tmp_path)
    damage(path)
    said = []
    again = load_or_generate(SPEC, tmp_path, log=said.append)
    assert len(said) == 1 and "unreadable" in said[0] and "\n" not in said[0]
    for name, split in first.splits.items():
        assert np.array_equal(again.splits[name].images, split.images)
        assert np.array_equal(again.splits[name].answers, split.answers)
    assert load_or_generate(SPEC, tmp_path, log=said.append).splits["train"].questions == \
        first.splits["train"].questions and len(said) == 1  # rewritten: the next load is a clean hit
