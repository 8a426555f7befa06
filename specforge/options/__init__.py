"""Every named option a spec can choose, one class per kind in a registry: activations, initializers, losses,
metrics, optimizers, callbacks."""
