"""Data: synthetic scenes made in code, and training patch datasets."""
