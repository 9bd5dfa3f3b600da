"""Training: the shared loop, the CycleGAN and autoencoder tasks, pools, schedules,
checkpoints."""
