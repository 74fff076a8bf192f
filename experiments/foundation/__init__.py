"""The synthetic world's pretrained CLIP: pretraining on several seeds and its zero-shot report."""
