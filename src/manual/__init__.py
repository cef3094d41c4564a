"""The manual-backprop network: every gradient written out, proven equal to autograd in tests/manual."""
