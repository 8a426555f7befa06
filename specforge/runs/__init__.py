"""Run directories: the manifest, checkpoints and resume, what runs record read back, and pictures of them."""
