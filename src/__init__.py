"""Lightning research template: data modules, nets, one LightningModule, a manual-backprop net, the CLI."""
