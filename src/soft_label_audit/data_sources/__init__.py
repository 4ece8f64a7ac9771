"""Plain data modules (no Kedro): real MNIST, the synthetic ambiguous variant, the study subset."""
