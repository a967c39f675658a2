"""Geometry shared by the workers (which cut lines out) and the web side (which draws on them)."""

# Margin cut around each detected line, in line heights: the line image, and so its attention
# grid, covers the detected polygon grown by this much on every side.
LINE_CROP_PAD = 0.12
