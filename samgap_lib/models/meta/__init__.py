"""Meta's backend (the ``sam2`` and ``sam3`` packages): `sam2.MetaSam2PromptSegmenter`,
`sam3.MetaSam3ConceptSegmenter` and `sam3.MetaSam3TrackerSegmenter`, the video propagator of
`video`, SAM3 on CPU (`sam3_cpu`) and at reduced sizes (`reduced`)."""
