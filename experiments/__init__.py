"""Experiments that train and evaluate KG-CLIP end to end (not part of the installed library).

Every experiment package has one shape: ``run`` (and the run modules it uses) trains or measures
and writes result rows into its work folder; ``report`` reads those rows and writes the
experiment's section of a document under ``docs/``; ``common`` holds what both need (the row
files' names, seeds, labels, ...), so neither imports the other; ``__main__`` parses the command
line and calls the run, then the report. Shared by all: :mod:`experiments.jsonl` (the row files),
:mod:`experiments.sections` (the documents' generated sections), :mod:`experiments.weights`.
"""
