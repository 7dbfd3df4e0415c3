"""MinneApple reader/writer, COCO and SA-Co round trips, bad inputs, atomic JSON, statistics."""

import contextlib
import io
import json

import numpy as np
import pytest
from PIL import Image

from samgap_lib.data import (
    Concept,
    Instance,
    Sample,
    check_image,
    check_mask,
    dataset_statistics,
    from_coco,
    from_saco,
    instance_records,
    load_minneapple,
    mask_to_box,
    mask_to_rle,
    pair_records,
    profile_samples,
    prompt_effort,
    rle_to_mask,
    split_indices,
    synthetic_orchard,
    to_coco,
    to_saco,
    usable_concepts,
    write_minneapple,
)
from samgap_lib.data.download import download_minneapple, verify_minneapple
from samgap_lib.io import read_json, write_json

CONCEPTS = [
    Concept("apple"),
    Concept("ripe apple", "apple", {"ripeness": "ripe"}),
    Concept("unripe apple", "apple", {"ripeness": "unripe"}),
    Concept("damaged apple", "apple", {"health": "damaged"}),
    Concept("pear", "pear"),
]


@pytest.fixture(scope="module")
def samples():
    return synthetic_orchard(6, seed=11, size=(72, 96))


# --- types -------------------------------------------------------------------------------


def test_check_image_errors():
    with pytest.raises(ValueError, match="grayscale"):
        check_image(np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError, match="RGBA"):
        check_image(np.zeros((4, 4, 4), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        check_image(np.zeros((4, 4, 3), np.uint16))
    with pytest.raises(ValueError, match="empty"):
        check_image(np.zeros((0, 4, 3), np.uint8))


def test_check_mask_refuses_non_binary_and_mismatch():
    assert check_mask(np.array([[0, 1]], np.uint8)).dtype == bool
    with pytest.raises(ValueError, match="other than 0 and 1"):
        check_mask(np.array([[0, 2]]))
    with pytest.raises(ValueError, match="does not match"):
        check_mask(np.zeros((3, 3), bool), shape=(4, 4))
    with pytest.raises(ValueError, match="2-D"):
        check_mask(np.zeros((1, 3, 3), bool))


def test_sample_refuses_mask_of_other_size():
    with pytest.raises(ValueError, match="resolution"):
        Sample(np.zeros((8, 8, 3), np.uint8), [Instance(np.zeros((4, 4), bool))])


def test_boxes_are_exclusive_and_never_zero_area():
    m = np.zeros((5, 6), bool)
    m[2, 3] = True
    assert mask_to_box(m).tolist() == [3, 2, 4, 3]
    assert mask_to_box(np.zeros((5, 6), bool)).tolist() == [0, 0, 0, 0]


def test_concept_matching():
    ripe = Instance(np.ones((2, 2), bool), {"ripeness": "ripe", "health": "damaged"})
    assert Concept("apple").matches(ripe)
    assert Concept("ripe apple", "apple", {"ripeness": "ripe"}).matches(ripe)
    assert not Concept("unripe apple", "apple", {"ripeness": "unripe"}).matches(ripe)
    assert Concept("red-ish", "apple", {"ripeness": ("ripe", "turning")}).matches(ripe)
    assert not Concept("pear", "pear").matches(ripe)
    with pytest.raises(ValueError, match="non-empty"):
        Concept("  ")


# --- MinneApple ---------------------------------------------------------------------------


def test_minneapple_round_trip(tmp_path, samples):
    write_minneapple(samples, tmp_path, "train")
    write_minneapple(samples[:2], tmp_path, "test")
    ds = load_minneapple(tmp_path, "train")
    assert len(ds) == len(samples)
    for s, r in zip(samples, ds, strict=True):
        assert np.array_equal(s.image, r.image)
        assert np.array_equal(s.masks, r.masks)
        assert r.meta["annotated"]
    test = load_minneapple(tmp_path, "test")
    assert len(test) == 2 and test[0].instances == [] and not test[0].meta["annotated"]
    sub = load_minneapple(tmp_path, "train", indices=[1, 3])
    assert [x.image_id for x in sub] == [ds[1].image_id, ds[3].image_id]
    assert len(ds[1:4]) == 3


def test_minneapple_keeps_one_pixel_wide_apples(tmp_path):
    """The reference loader dropped zero-area boxes from boxes but not masks; we keep all."""
    img = np.zeros((20, 10, 3), np.uint8)
    ids = np.zeros((20, 10), np.uint8)
    ids[3:9, 4] = 1  # one column wide
    ids[12, 2:7] = 2  # one row high
    ids[15:18, 6:9] = 3
    (tmp_path / "detection/train/images").mkdir(parents=True)
    (tmp_path / "detection/train/masks").mkdir(parents=True)
    Image.fromarray(img).save(tmp_path / "detection/train/images/a.png")
    Image.fromarray(ids).save(tmp_path / "detection/train/masks/a.png")
    s = load_minneapple(tmp_path)[0]
    assert [i.instance_id for i in s.instances] == [1, 2, 3]
    boxes = s.boxes
    assert len(boxes) == 3 and ((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) > 0).all()


def _layout(tmp_path, image, mask=None, name="x.png"):
    (tmp_path / "detection/train/images").mkdir(parents=True, exist_ok=True)
    (tmp_path / "detection/train/masks").mkdir(parents=True, exist_ok=True)
    if isinstance(image, bytes):
        (tmp_path / "detection/train/images" / name).write_bytes(image)
    else:
        Image.fromarray(image).save(tmp_path / "detection/train/images" / name)
    if mask is not None:
        Image.fromarray(mask).save(tmp_path / "detection/train/masks" / name)


@pytest.mark.parametrize(
    "image, match",
    [
        (np.zeros((8, 8), np.uint8), "grayscale"),
        (np.zeros((8, 8, 4), np.uint8), "alpha"),
        (np.zeros((8, 8), np.uint16), "16-bit"),
        (b"", "empty or corrupt"),
        (b"\x89PNG\r\n\x1a\n garbage", "empty or corrupt"),
    ],
)
def test_minneapple_bad_images_name_the_file(tmp_path, image, match):
    _layout(tmp_path, image, np.zeros((8, 8), np.uint8))
    ds = load_minneapple(tmp_path)
    with pytest.raises(ValueError, match=match) as e:
        ds[0]
    assert "x.png" in str(e.value)


def test_minneapple_bad_masks(tmp_path):
    _layout(tmp_path, np.zeros((8, 8, 3), np.uint8), np.zeros((6, 8), np.uint8))
    with pytest.raises(ValueError, match="its image is"):
        load_minneapple(tmp_path)[0]
    _layout(tmp_path, np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(ValueError, match="single-channel"):
        load_minneapple(tmp_path)[0]


def test_minneapple_missing_pieces(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a MinneApple root"):
        load_minneapple(tmp_path)
    _layout(tmp_path, np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(FileNotFoundError, match="mask file is missing"):
        load_minneapple(tmp_path)[0]
    with pytest.raises(ValueError, match="split"):
        load_minneapple(tmp_path, "val")
    with pytest.raises(IndexError):
        load_minneapple(tmp_path, indices=[5])


def test_split_indices_are_disjoint_and_seeded():
    a = split_indices(100, seed=1)
    assert sorted(sum(a, [])) == list(range(100))
    assert [len(x) for x in a] == [70, 15, 15]
    assert a == split_indices(100, seed=1) and a != split_indices(100, seed=2)
    with pytest.raises(ValueError, match="sum to 1"):
        split_indices(10, (0.5, 0.2))


def test_download_fails_at_once_offline(tmp_path):
    with pytest.raises(ConnectionError, match="by hand"):
        download_minneapple(tmp_path, url="http://127.0.0.1:9/detection.tar.gz", timeout=2)
    assert not list(tmp_path.glob("*.part"))


def test_download_extracts_and_verifies_a_real_archive(tmp_path, samples):
    import tarfile

    src = tmp_path / "src"
    write_minneapple(samples, src, "train")
    write_minneapple(samples[:2], src, "test")
    archive = tmp_path / "detection.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(src / "detection", arcname="detection")
    dest = tmp_path / "dest"
    expected = {"train/images": 6, "train/masks": 6, "test/images": 2}
    import samgap_lib.data.download as dl

    orig = dl.EXPECTED_COUNTS
    dl.EXPECTED_COUNTS = expected
    try:
        counts = download_minneapple(dest, url=archive.as_uri())
    finally:
        dl.EXPECTED_COUNTS = orig
    assert counts == expected
    with pytest.raises(ValueError, match="expected 670"):
        verify_minneapple(dest)


# --- COCO / SA-Co -------------------------------------------------------------------------


def test_rle_round_trip(rng):
    m = rng.random((33, 47)) > 0.6
    rle = mask_to_rle(m)
    json.dumps(rle)
    assert np.array_equal(rle_to_mask(rle), m)


def test_coco_round_trip_is_lossless(samples):
    coco = json.loads(json.dumps(to_coco(samples)))
    back = from_coco(coco, {s.image_id: s.image for s in samples})
    for a, b in zip(samples, back, strict=True):
        assert a.image_id == b.image_id
        assert np.array_equal(a.masks, b.masks)
        assert [i.attributes for i in a.instances] == [i.attributes for i in b.instances]
        assert [i.instance_id for i in a.instances] == [i.instance_id for i in b.instances]


def test_coco_boxes_agree_with_pycocotools(samples):
    coco = to_coco(samples)
    for a in coco["annotations"]:
        m = rle_to_mask(a["segmentation"])
        x0, y0, x1, y1 = mask_to_box(m)
        assert a["bbox"] == [x0, y0, x1 - x0, y1 - y0]
        assert a["area"] == int(m.sum())


def test_saco_form_and_round_trip(samples):
    saco = json.loads(json.dumps(to_saco(samples, CONCEPTS)))
    assert len(saco["images"]) == len(samples) * len(CONCEPTS)
    assert {e["text_input"] for e in saco["images"]} == {c.text for c in CONCEPTS}
    assert all(e["is_instance_exhaustive"] == 1 for e in saco["images"])
    per_pair = {e["id"]: 0 for e in saco["images"]}
    for a in saco["annotations"]:
        per_pair[a["image_id"]] += 1
    pear = [e["id"] for e in saco["images"] if e["text_input"] == "pear"]
    assert all(per_pair[i] == 0 for i in pear)
    back, concepts = from_saco(saco, {s.image_id: s.image for s in samples})
    assert [c.text for c in concepts] == [c.text for c in CONCEPTS]
    assert concepts[1].attributes == {"ripeness": "ripe"}
    for a, b in zip(samples, back, strict=True):
        assert np.array_equal(a.masks, b.masks)
        assert [i.attributes for i in a.instances] == [i.attributes for i in b.instances]


def test_saco_refuses_duplicate_phrases(samples):
    with pytest.raises(ValueError, match="duplicate"):
        to_saco(samples, [Concept("apple"), Concept("apple")])


def test_saco_is_read_by_sam3_cgf1_evaluator(tmp_path, samples):
    """A perfect prediction file scores cgF1 = 1 under Meta's evaluator."""
    from sam3.eval.cgf1_eval import CGF1Evaluator

    saco = to_saco(samples, CONCEPTS)
    preds = [
        {
            "image_id": a["image_id"],
            "category_id": 1,
            "segmentation": a["segmentation"],
            "bbox": a["bbox"],
            "score": 0.9,
        }
        for a in saco["annotations"]
    ]
    write_json(saco, tmp_path / "gt.json")
    write_json(preds, tmp_path / "pred.json")
    with contextlib.redirect_stdout(io.StringIO()):
        out = CGF1Evaluator(str(tmp_path / "gt.json"), iou_type="segm").evaluate(
            str(tmp_path / "pred.json")
        )
    # the evaluator adds 1e-4 to its F1 denominators, so a perfect score reads 0.9999x
    assert out["cgF1_eval_segm_cgF1"] == pytest.approx(1.0, abs=1e-3)
    assert out["cgF1_eval_segm_IL_MCC"] == pytest.approx(1.0, abs=1e-3)


def test_from_coco_refuses_non_coco():
    with pytest.raises(ValueError, match="annotations"):
        from_coco({"images": []}, {})


# --- statistics and profiles --------------------------------------------------------------


def test_statistics(samples):
    stats = dataset_statistics(samples, CONCEPTS)
    assert stats["images"] == 6
    assert stats["instances"] == sum(len(s.instances) for s in samples)
    assert stats["pairs_per_image"] == len(CONCEPTS)
    assert 0 < stats["negative_pairs_frac"] < 1
    recs = instance_records(samples)
    assert len(recs) == stats["instances"]
    assert all(r["diameter"] == pytest.approx(2 * np.sqrt(r["area"] / np.pi)) for r in recs)
    pairs = pair_records(samples, CONCEPTS)
    assert sum(p["negative"] for p in pairs if p["phrase"] == "pear") == len(samples)


def test_touching_detects_adjacent_masks():
    img = np.zeros((10, 10, 3), np.uint8)
    a = np.zeros((10, 10), bool)
    b = np.zeros((10, 10), bool)
    c = np.zeros((10, 10), bool)
    a[2:5, 2:5] = True
    b[2:5, 5:8] = True  # shares an edge with a
    c[8:10, 8:10] = True
    s = Sample(
        img, [Instance(a, instance_id=1), Instance(b, instance_id=2), Instance(c, instance_id=3)]
    )
    assert [r["touching"] for r in instance_records([s])] == [True, True, False]


def test_prompt_effort(samples):
    eff = prompt_effort(samples, CONCEPTS, clicks_per_instance=3)
    for r in eff:
        assert r["sam2_clicks"] == 3 * r["n_instances"] and r["sam3_phrases"] == 1
    with pytest.raises(ValueError):
        prompt_effort(samples, CONCEPTS, clicks_per_instance=0)


def test_profiles(tmp_path, samples):
    smoke = profile_samples("smoke", 2, seed=11, size=(72, 96), split="train")
    assert np.array_equal(smoke[0].image, samples[0].image)
    assert profile_samples("smoke", 1, seed=11, size=(72, 96))[0].image_id == 200_000
    with pytest.raises(ValueError, match="data_root"):
        profile_samples("paper", 2)
    write_minneapple(synthetic_orchard(20, seed=0, size=(40, 40)), tmp_path)
    paper = profile_samples("paper", 3, seed=0, data_root=tmp_path)
    assert len(paper) == 3 and all(s.meta["source"] == "minneapple" for s in paper)
    # MinneApple has no attribute labels: attribute phrases are dropped, category ones kept
    stripped = [Sample(s.image, [Instance(i.mask) for i in s.instances]) for s in paper]
    assert [c.text for c in usable_concepts(stripped, CONCEPTS)] == ["apple", "pear"]


def test_atomic_json(tmp_path):
    p = tmp_path / "a" / "r.json"
    write_json({"x": np.float32(1.5), "n": np.int64(2), "a": np.arange(2)}, p)
    assert read_json(p) == {"x": 1.5, "n": 2, "a": [0, 1]}

    class Boom:
        pass

    with pytest.raises(TypeError):
        write_json({"bad": Boom()}, p)
    assert read_json(p)["n"] == 2  # the old file survives a failed write
    assert [q.name for q in p.parent.iterdir()] == ["r.json"]
    p.write_text('{"trunc')
    with pytest.raises(ValueError, match="truncated"):
        read_json(p)


def test_json_is_strict_and_undefined_numbers_come_back(tmp_path):
    """What samgap writes parses in a browser (no bare NaN): undefined numbers are null, the
    file says why and where, and `read_json` restores them."""
    import math

    summary = {
        "recall[pear]": float("nan"),
        "recall[apple]": np.float32(0.5),
        "per_k": [1.0, np.nan, -np.inf],
        "inner": {"AP": np.float64("nan")},
    }
    p = write_json({"summary": summary, "n": 3}, tmp_path / "s.json")
    text = p.read_text()
    raw = json.loads(text)  # strict parsers too: no NaN literals
    json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard {c}"))
    assert raw["summary"]["recall[pear]"] is None and raw["summary"]["per_k"][1:] == [None, None]
    assert "undefined" in raw["nulls"]["note"]
    assert sorted(v["path"] for v in raw["nulls"]["values"]) == [
        ["summary", "inner", "AP"],
        ["summary", "per_k", "1"],
        ["summary", "per_k", "2"],
        ["summary", "recall[pear]"],
    ]
    back = read_json(p)
    assert "nulls" not in back and back["n"] == 3
    assert math.isnan(back["summary"]["recall[pear]"]) and math.isnan(
        back["summary"]["inner"]["AP"]
    )
    assert back["summary"]["per_k"][0] == 1.0 and math.isnan(back["summary"]["per_k"][1])
    assert back["summary"]["per_k"][2] == -math.inf and back["summary"]["recall[apple]"] == 0.5
    # a real None stays None, and a file with nothing undefined carries no list
    q = write_json({"clicks_to_match": None}, tmp_path / "n.json")
    assert json.loads(q.read_text()) == {"clicks_to_match": None} == read_json(q)
    with pytest.raises(ValueError, match="reserved"):
        write_json({"nulls": 1, "x": float("nan")}, tmp_path / "r.json")


def test_file_lock_lets_one_holder_in_at_a_time(tmp_path):
    """A second holder waits until the first leaves (two threads, two open file descriptions)."""
    import threading
    import time

    from samgap_lib.io import file_lock

    order: list[str] = []
    first_in = threading.Event()

    def first():
        with file_lock(tmp_path / "sub" / ".x.lock"):
            order.append("first in")
            first_in.set()
            time.sleep(0.3)
            order.append("first out")

    t = threading.Thread(target=first)
    t.start()
    first_in.wait()
    with file_lock(tmp_path / "sub" / ".x.lock"):
        order.append("second in")
    t.join()
    assert order == ["first in", "first out", "second in"]
