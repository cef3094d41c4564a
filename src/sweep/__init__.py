"""Sweeps: a YAML file of configs, keys and seeds, run as an Optuna study (python -m src.sweep FILE)."""
