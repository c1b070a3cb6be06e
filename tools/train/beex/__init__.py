"""BEExformer reference model and binarization-aware trainer (see docs/MODEL.md)."""
