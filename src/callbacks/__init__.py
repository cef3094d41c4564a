"""Callbacks of our own: only what Lightning's do not already do. Import each from its module."""
