"""The seed paper's claims, one by one, with a verdict from this book's evidence.

The seed paper (Sapkota, Roumeliotis and Karkee, arXiv 2512.06032) argues that SAM2 expertise does
not transfer to SAM3. Its abstract is qualitative; its repository's README states findings
("Our experiments demonstrate: ...") with no number behind them and projects fine-tuning numbers
it labels "expected" (nothing in the repository measures them). `CLAIMS` quotes each claim with
where it is made; each `judge_*` function turns the evidence this book has into a `Verdict`:

* ``supported`` or ``contradicted``, by evidence of a named kind: ``smoke`` (the miniature models
  on the synthetic orchard, computed by the page), ``recorded`` (a recorded run, with its
  provenance), ``published`` (a cited figure of the released models) or ``source`` (the released
  code or configs);
* ``not testable here``, with what would test it.

The verdicts that rest on numbers are computed from them, so they change when the numbers do
(the tests feed them other numbers). A verdict on the miniature says nothing of the released
models unless it says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "CLAIMS",
    "METRIC_NAMES",
    "VERDICTS",
    "Claim",
    "Verdict",
    "judge_ambiguity",
    "judge_attribute_split",
    "judge_dataset",
    "judge_expected_finetuning",
    "judge_losses",
    "judge_memory",
    "judge_mixed_precision",
    "judge_one_phrase",
    "judge_zero_shot",
]

VERDICTS = ("supported", "contradicted", "not testable here")
SEED_README = (
    "https://github.com/Applied-AI-Research-Lab/"
    "The-SAM2-to-SAM3-Gap-in-the-Segment-Anything-Model-Family/blob/2777338/README.md"
)


@dataclass(frozen=True)
class Claim:
    """One claim of the seed paper: its ``id``, the ``quote`` and ``where`` it is made."""

    id: str
    quote: str
    where: str


@dataclass(frozen=True)
class Verdict:
    """A verdict on a claim: one of `VERDICTS`, ``because`` (one or two sentences with the
    numbers), the ``evidence`` kinds it rests on (smoke, recorded, published, source) and, when
    not testable here, ``would_test`` (what would)."""

    verdict: str
    because: str
    evidence: tuple[str, ...] = ()
    would_test: str = ""
    numbers: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}.")


CLAIMS: tuple[Claim, ...] = (
    Claim(
        "one_phrase",
        "SAM2 requires manual prompts for each apple instance, while SAM3 segments all instances "
        "from a single text prompt",
        "README, Results Summary > Inference, item 1",
    ),
    Claim(
        "attribute_split",
        'SAM3 successfully distinguishes "ripe apples" from "unripe apples" without spatial '
        "guidance",
        "README, Results Summary > Inference, item 2",
    ),
    Claim(
        "zero_shot",
        "SAM3 shows superior zero-shot performance on unseen concept variations",
        "README, Results Summary > Inference, item 3",
    ),
    Claim(
        "ambiguity",
        "SAM2 fails on ambiguous spatial regions; SAM3 struggles with highly polysemous language",
        "README, Results Summary > Inference, item 4",
    ),
    Claim(
        "expected_finetuning",
        "Expected improvements after fine-tuning: SAM2 (50 epochs on MineApple) mean IoU "
        "0.85-0.92, Boundary F1 0.88-0.94, 2-3 hours on A100; SAM3 (30 epochs on concept-annotated "
        "data) mean IoU 0.88-0.94, concept recall 0.82-0.90, grounding accuracy 0.75-0.85, "
        "4-6 hours",
        "README, Results Summary > Fine-tuning (Custom Datasets)",
    ),
    Claim(
        "memory",
        "SAM2 fine-tuning memory: 11GB-24GB depending on configuration; SAM3: "
        "~18GB at batch_size=1, resolution=1008",
        "README, Features > Fine-tuning",
    ),
    Claim(
        "mixed_precision",
        "Mixed precision training (2x speedup)",
        "README, Features > Fine-tuning",
    ),
    Claim(
        "losses",
        "Concept-driven losses: segmentation + grounding + attributes",
        "README, Features > Fine-tuning (SAM3)",
    ),
    Claim(
        "metrics",
        "SAM3 Concept Metrics: Concept Recall, Semantic Localization Error, Open-Vocabulary F1 "
        "Score, Attribute Segmentation Accuracy",
        "README, Experimental Validation > Metrics",
    ),
    Claim(
        "dataset",
        "MineApple: ~1,200 images, 1920x1080 pixels, ripeness / health / colour attribute labels",
        "repository data/README.md, Dataset Statistics and Attribute Labels",
    ),
)

# The seed's metric names, what each means there, and what this library computes for it.
METRIC_NAMES: tuple[dict[str, str], ...] = (
    {
        "seed metric": "Concept Recall",
        "seed's definition": "detected instances of a concept / its instances (docs/methodology.md)",
        "samgap": "samgap_lib.metrics.concept_recall (matched at mask IoU >= 0.5, score >= 0.5)",
    },
    {
        "seed metric": "Semantic Localization Error",
        "seed's definition": "none: named in the README and a config flag, defined and computed "
        "nowhere",
        "samgap": "samgap_lib.metrics.localization_error (centroid distance of matched masks, "
        "as a fraction of the image diagonal): one reading of the name",
    },
    {
        "seed metric": "Open-Vocabulary F1",
        "seed's definition": "F1 gap between seen and unseen phrases; its code never counts a "
        "false positive",
        "samgap": "samgap_lib.metrics.open_vocab_f1 (F1 over seen and over unseen phrases, false "
        "positives counted); SAM 3 itself reports cgF1 and pmF1",
    },
    {
        "seed metric": "Attribute Segmentation Accuracy",
        "seed's definition": "named only (methodology.md calls it Attribute Understanding "
        "Accuracy)",
        "samgap": "samgap_lib.metrics.attribute_accuracy (precision on the right attribute, "
        "rejection of the wrong one)",
    },
    {
        "seed metric": "Grounding Accuracy",
        "seed's definition": "correct text-to-mask alignments / predictions; its code compares the "
        "prompt string with the label and never reads the mask",
        "samgap": "no equivalent: a grounding is right when the mask matches an instance the "
        "phrase names, which is precision (samgap_lib.metrics.concept_counts)",
    },
    {
        "seed metric": "Boundary F1",
        "seed's definition": "boundary F at a 2 px tolerance (docs/methodology.md)",
        "samgap": "samgap_lib.metrics.boundary_f1 (DAVIS's f_measure; bound_th=2 for 2 px)",
    },
)


def judge_one_phrase(median_clicks_to_match: float | None, sam2_prompts_per_apple: int) -> Verdict:
    """Claim ``one_phrase``. SAM2 answers one object per prompt (``sam2_prompts_per_apple``
    >= 1 by construction); the effort-equivalence experiment (chapter 1) gives the clicks SAM2
    needs per image to match what one phrase gives SAM3. Supported when SAM2 needs more than
    one prompt where SAM3 needs one."""
    nums = {"median_clicks_to_match": median_clicks_to_match}
    if median_clicks_to_match is None:
        return Verdict(
            "supported",
            "SAM2 never reached the quality of one SAM3 phrase within the click budget on these "
            "images, and each of its prompts segments one apple.",
            ("smoke",),
            numbers=nums,
        )
    if sam2_prompts_per_apple >= 1 and median_clicks_to_match > 1:
        return Verdict(
            "supported",
            f"SAM2 needed a median of {median_clicks_to_match:g} clicks per image to match the "
            "image-level quality of one SAM3 phrase; each of its prompts segments one apple.",
            ("smoke",),
            numbers=nums,
        )
    return Verdict(
        "contradicted",
        f"one click per image ({median_clicks_to_match:g}) matched one phrase here.",
        ("smoke",),
        numbers=nums,
    )


def judge_attribute_split(
    selectivity: Mapping[str, float], recall: Mapping[str, float], labelled: bool = True
) -> Verdict:
    """Claim ``attribute_split``: supported when the detections of "ripe apple" and of "unripe
    apple" fall on the right apples (selectivity >= 0.9 each) and each phrase finds some
    (recall >= 0.3). ``labelled`` False (MinneApple has no ripeness labels): not testable."""
    if not labelled:
        return Verdict(
            "not testable here",
            "the data carry no ripeness labels.",
            would_test="images with ripe and unripe apples labelled (the synthetic orchard "
            "here; no public MinneApple split has them)",
        )
    phrases = ("ripe apple", "unripe apple")
    sel = {p: float(selectivity[p]) for p in phrases}
    rec = {p: float(recall[p]) for p in phrases}
    nums = {"selectivity": sel, "recall": rec}
    ok = all(sel[p] >= 0.9 and rec[p] >= 0.3 for p in phrases)
    said = "; ".join(
        f'"{p}": {sel[p]:.2f} of its matched detections on the right apples, recall {rec[p]:.2f}'
        for p in phrases
    )
    return Verdict(
        "supported" if ok else "contradicted",
        f"{said} (the miniature, from one phrase and no click).",
        ("smoke",),
        numbers=nums,
    )


def judge_zero_shot(seen_recall: float, unseen_recall: float, margin: float = 0.1) -> Verdict:
    """Claim ``zero_shot`` on the miniature: phrasings it never saw in training scored like the
    trained ones. Contradicted for the miniature when unseen phrasings find ``margin`` fewer of
    their apples (recall) than the trained phrases for the same concepts; supported when they
    find as many."""
    nums = {"seen_recall": seen_recall, "unseen_recall": unseen_recall}
    if unseen_recall >= seen_recall - margin:
        return Verdict(
            "supported",
            f"unseen phrasings found {unseen_recall:.2f} of their apples against "
            f"{seen_recall:.2f} for the trained phrases of the same concepts (miniature).",
            ("smoke",),
            numbers=nums,
        )
    return Verdict(
        "contradicted",
        f"for the miniature: unseen phrasings found {unseen_recall:.2f} of their apples against "
        f"{seen_recall:.2f} for the trained phrases of the same concepts. A text encoder trained "
        "from scratch on a handful of phrases has no vocabulary beyond them; the released "
        "SAM 3's pretrained encoder is what this claim is about, and this book cannot run it.",
        ("smoke",),
        would_test="the released SAM 3 on MinneApple with phrasings outside SA-Co's vocabulary "
        "(paper profile), scored against the same phrases' trained forms",
        numbers=nums,
    )


def judge_ambiguity(touching_miou1: float, isolated_miou1: float, margin: float = 0.02) -> Verdict:
    """Claim ``ambiguity`` (its SAM2 half): one click on an apple touching another is ambiguous.
    Supported when SAM2's first-click mIoU on touching apples is ``margin`` below that on
    isolated ones. SAM3's half (polysemous language) cannot be tested on orchard phrases."""
    nums = {"touching": touching_miou1, "isolated": isolated_miou1}
    half = (
        " SAM3's half, polysemous language, is not testable on orchard phrases: it would need "
        'phrases with two meanings in the data (a "bat", an "apple" logo beside fruit).'
    )
    if touching_miou1 <= isolated_miou1 - margin:
        return Verdict(
            "supported",
            f"SAM2's mIoU after one click: {touching_miou1:.2f} on apples touching another, "
            f"{isolated_miou1:.2f} on isolated ones.{half}",
            ("smoke",),
            numbers=nums,
        )
    return Verdict(
        "contradicted",
        f"SAM2's mIoU after one click is no lower on touching apples ({touching_miou1:.2f}) than "
        f"on isolated ones ({isolated_miou1:.2f}).{half}",
        ("smoke",),
        numbers=nums,
    )


def judge_expected_finetuning(paper_results: Mapping[str, float] | None) -> Verdict:
    """Claim ``expected_finetuning``: numbers the seed labels "expected", for released models
    fine-tuned on MinneApple on an A100. Testable only by the paper profile: with its recorded
    fine-tuned SAM2 mIoU and Boundary F1 (``paper_results``), supported when both fall in the
    seed's ranges."""
    if not paper_results:
        return Verdict(
            "not testable here",
            "the seed labels these numbers expected, not measured, and nothing in its repository "
            "measures them; they are about the released models fine-tuned on MinneApple.",
            would_test="`make paper` on a GPU with MinneApple, fine-tuning SAM 2.1 for 50 epochs "
            "(samgap train sam2 --config with data.source minneapple) and scoring mIoU and "
            "Boundary F1 on held-out images",
        )
    miou, bf1 = float(paper_results["miou"]), float(paper_results["boundary_f1"])
    ok = 0.85 <= miou <= 0.92 and 0.88 <= bf1 <= 0.94
    return Verdict(
        "supported" if ok else "contradicted",
        f"fine-tuned SAM2 on MinneApple: mIoU {miou:.3f}, Boundary F1 {bf1:.3f} (paper profile).",
        ("paper",),
        numbers={"miou": miou, "boundary_f1": bf1},
    )


def judge_memory(
    sam3_full_gib: float, sam3_frozen_vision_gib: float, claimed: float = 18.0
) -> Verdict:
    """Claim ``memory`` (its SAM3 half, the one with a single number): peak GPU memory of SAM3
    mask fine-tuning at batch 1 and 1008 px, from the recorded CUDA run. Contradicted when the
    measured peak with nothing frozen is more than 15% from the claimed 18 GB (GiB here)."""
    nums = {"full": sam3_full_gib, "frozen_vision": sam3_frozen_vision_gib}
    off = abs(sam3_full_gib - claimed) / claimed
    text = (
        f"measured at the released size (random weights, bf16, one image and four phrases): "
        f"{sam3_full_gib:.1f} GiB with nothing frozen, {sam3_frozen_vision_gib:.1f} GiB with the "
        "vision encoder frozen."
    )
    return Verdict(
        "supported" if off <= 0.15 else "contradicted", text, ("recorded",), numbers=nums
    )


def judge_mixed_precision(
    fp32_steps_per_s: float | None, bf16_steps_per_s: float | None
) -> Verdict:
    """Claim ``mixed_precision``: supported when bf16 runs at least 1.8x the fp32 steps per
    second on the same GPU; not testable without both."""
    if not fp32_steps_per_s or not bf16_steps_per_s:
        return Verdict(
            "not testable here",
            "the recorded GPU run measured bf16 only, and no GPU ran for this book.",
            would_test="samgap bench train --device cuda run twice, with train.precision fp32 and "
            "bf16, on one GPU",
        )
    ratio = bf16_steps_per_s / fp32_steps_per_s
    return Verdict(
        "supported" if ratio >= 1.8 else "contradicted",
        f"bf16 ran {ratio:.2f}x the fp32 steps per second.",
        ("recorded",),
        numbers={"speedup": ratio},
    )


def judge_losses(official_sam3_losses: str) -> Verdict:
    """Claim ``losses``: against the loss terms SAM 3's released fine-tuning config uses (the
    recipe's ``losses (weight)`` text). Contradicted when it has no attribute term and no
    separate grounding term."""
    text = official_sam3_losses.lower()
    has_attr = "attribute" in text
    has_grounding = "grounding" in text
    if has_attr or has_grounding:
        return Verdict("supported", "SAM 3's released recipe has such terms.", ("source",))
    return Verdict(
        "contradicted",
        "SAM 3's released fine-tuning config trains classification (IoU-aware BCE), box L1 and "
        "GIoU, and presence, with its mask terms switched off: no attribute loss and no "
        "grounding loss beyond the classification of each query against the phrase. In the "
        "seed's own code the attribute loss returns 0.",
        ("source",),
    )


def judge_dataset(images: int, labelled_attributes: bool) -> Verdict:
    """Claim ``dataset``: MinneApple's published size (``images``) and labels against the
    seed's ~1,200 images with ripeness labels."""
    ok = abs(images - 1200) <= 60 and labelled_attributes
    return Verdict(
        "supported" if ok else "contradicted",
        f"MinneApple holds {images} images with over 41,000 apples of one class, apple; "
        "it has no ripeness, health or colour labels.",
        ("published",),
        numbers={"images": images},
    )
