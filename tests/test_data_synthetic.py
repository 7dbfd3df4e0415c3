"""The synthetic orchard: determinism, annotation invariants, attributes, video ids."""

import numpy as np
import pytest

from samgap_lib.data import (
    HEALTH,
    RIPENESS,
    OrchardConfig,
    Sample,
    synthetic_orchard,
    synthetic_orchard_video,
)


@pytest.fixture(scope="module")
def orchard():
    return synthetic_orchard(24, seed=3, size=(128, 160))


def test_deterministic_and_prefix_stable(orchard):
    again = synthetic_orchard(24, seed=3, size=(128, 160))
    prefix = synthetic_orchard(5, seed=3, size=(128, 160))
    for a, b in zip(orchard, again, strict=True):
        assert np.array_equal(a.image, b.image)
        assert np.array_equal(a.masks, b.masks)
        assert [i.attributes for i in a.instances] == [i.attributes for i in b.instances]
    for a, b in zip(orchard[:5], prefix, strict=True):
        assert np.array_equal(a.image, b.image)
    other = synthetic_orchard(1, seed=4, size=(128, 160))[0]
    assert not np.array_equal(other.image, orchard[0].image)


def test_start_gives_disjoint_chunks():
    whole = synthetic_orchard(6, seed=1, size=(64, 64))
    tail = synthetic_orchard(3, seed=1, size=(64, 64), start=3)
    for a, b in zip(whole[3:], tail, strict=True):
        assert a.image_id == b.image_id and np.array_equal(a.image, b.image)


def test_workers_render_the_same_samples(monkeypatch):
    import samgap_lib.data.synthetic as synthetic

    monkeypatch.setattr(synthetic, "CHUNK", 4)  # 10 images: 3 chunks over 2 processes
    serial = synthetic_orchard(10, seed=2, size=(48, 48), start=7)
    parallel = synthetic_orchard(10, seed=2, size=(48, 48), start=7, workers=2)
    assert [s.image_id for s in parallel] == list(range(7, 17))
    for a, b in zip(serial, parallel, strict=True):
        assert a.image_id == b.image_id and a.meta == b.meta
        assert np.array_equal(a.image, b.image) and np.array_equal(a.masks, b.masks)
        assert [i.attributes for i in a.instances] == [i.attributes for i in b.instances]


def test_images_and_masks_are_well_formed(orchard):
    for s in orchard:
        assert isinstance(s, Sample)
        assert s.image.shape == (128, 160, 3) and s.image.dtype == np.uint8
        m = s.masks
        assert m.dtype == bool and m.shape == (len(s.instances), 128, 160)
        # visible masks never overlap: each pixel belongs to at most one apple
        assert (m.sum(0) <= 1).all()
        for inst in s.instances:
            assert inst.area >= OrchardConfig().min_visible_area
            assert inst.attributes["ripeness"] in RIPENESS
            assert inst.attributes["health"] in HEALTH
            assert 0 < inst.attributes["visible_fraction"] <= 1
            assert inst.area <= inst.attributes["amodal_area"]
        assert len({i.instance_id for i in s.instances}) == len(s.instances)


def test_variety_over_a_dataset(orchard):
    insts = [i for s in orchard for i in s.instances]
    counts = [len(s.instances) for s in orchard]
    assert max(counts) >= 6
    assert {i.attributes["ripeness"] for i in insts} == set(RIPENESS)
    assert {i.attributes["health"] for i in insts} == set(HEALTH)
    assert any(i.attributes["visible_fraction"] < 0.9 for i in insts)  # occlusion happens


def test_empty_images_happen():
    samples = synthetic_orchard(10, seed=0, size=(48, 48), config=OrchardConfig(p_empty=1.0))
    assert all(len(s.instances) == 0 for s in samples)


def test_apples_are_red_or_green_by_ripeness():
    samples = synthetic_orchard(12, seed=7, size=(128, 128))
    red_minus_green = {"ripe": [], "unripe": []}
    for s in samples:
        for inst in s.instances:
            if inst.attributes["ripeness"] in red_minus_green:
                r, g, _ = s.image[inst.mask].astype(float).mean(0)
                red_minus_green[inst.attributes["ripeness"]].append(r - g)
    assert np.median(red_minus_green["ripe"]) > 60
    assert np.median(red_minus_green["unripe"]) < 0


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_images": -1}, "n_images"),
        ({"n_images": 1, "size": (8, 8)}, "16x16"),
        ({"n_images": 1, "workers": 0}, "workers must be >= 1"),
        ({"n_images": 1, "config": "bad"}, None),
    ],
)
def test_bad_arguments(kwargs, match):
    if match is None:
        with pytest.raises(AttributeError):
            synthetic_orchard(**kwargs)
    else:
        with pytest.raises(ValueError, match=match):
            synthetic_orchard(**kwargs)


@pytest.mark.parametrize(
    "cfg, match",
    [
        ({"radius": (0.2, 0.1)}, "radius"),
        ({"ripeness_p": (0.5, 0.5, 0.5)}, "ripeness_p"),
        ({"p_damaged": 1.5}, "p_damaged"),
        ({"max_apples": -2}, "max_apples"),
    ],
)
def test_bad_config(cfg, match):
    with pytest.raises(ValueError, match=match):
        OrchardConfig(**cfg)


def test_video_ids_are_stable_and_follow_the_pan():
    frames = synthetic_orchard_video(6, seed=2, size=(96, 128), pan=10, shake=0)
    again = synthetic_orchard_video(6, seed=2, size=(96, 128), pan=10, shake=0)
    assert all(np.array_equal(a.image, b.image) for a, b in zip(frames, again, strict=True))
    # consecutive frames overlap: frame t+1 shifted right by `pan` equals frame t
    assert np.array_equal(frames[0].image[:, 10:], frames[1].image[:, :-10])
    by_id = {}
    for f in frames:
        for inst in f.instances:
            by_id.setdefault(inst.instance_id, []).append((f.image_id, inst))
    assert by_id, "the video should contain apples"
    # an apple seen in two consecutive frames has the same mask shifted by the pan
    checked = 0
    for seq in by_id.values():
        for (t0, a), (t1, b) in zip(seq, seq[1:], strict=False):
            if t1 == t0 + 1:
                assert np.array_equal(a.mask[:, 10:], b.mask[:, :-10])
                checked += 1
    assert checked > 0


def test_video_bad_arguments():
    with pytest.raises(ValueError, match="n_frames"):
        synthetic_orchard_video(0)
    with pytest.raises(ValueError, match="pan"):
        synthetic_orchard_video(3, pan=-1)
