"""The timeline held against ground truth: long synthetic videos stitched from fresh clips of
different actions (``kgclip_core.synth.stitch``), their boundaries known, through
``kgclip_core.timeline`` with the demo checkpoint: frame-level accuracy against the same model's
clip-level accuracy on the very clips stitched, and how far each found boundary is from a true one.

    python -m experiments.timeline                  # measure (once per setting), then the report
    python -m experiments.timeline --only report    # rewrite the report from the committed rows
"""
