"""The transformers backend: `sam2.HFPromptSegmenter` (Sam2Model, Sam3TrackerModel),
`sam3.HFConceptSegmenter` (Sam3Model) and the video propagators of `video`."""
