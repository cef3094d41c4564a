"""Plain nn.Module networks (mlp, cnn) and the one LightningModule that trains them (classifier)."""
