"""cyclelab: reproducible CycleGAN-style studies of unpaired image-to-image translation."""

__version__ = "0.1.0"
