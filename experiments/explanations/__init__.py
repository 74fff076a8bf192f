"""Explanations held against the synthetic world's ground truth: are the ✓ marks right, does the
contrast name what tells two actions apart, does the first map point at the moving part and does
hiding it change the model's mind, and does "not sure" come up where no label fits.

    python -m experiments.explanations                 # detectors, dev, test (each once), report
    python -m experiments.explanations --only maps-dev # the first map under today's rule, dev split
    python -m experiments.explanations --only report   # rewrite the report from the committed rows
"""
