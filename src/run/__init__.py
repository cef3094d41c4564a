"""A run: its folder and the names in it (layout), what a command chose (choice), its numbers (recorder), its
checkpoints (checkpoints). Nothing outside this package spells a run's on-disk names."""
