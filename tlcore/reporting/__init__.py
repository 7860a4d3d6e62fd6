"""What a run writes: report.json, the model card and the run folder."""
