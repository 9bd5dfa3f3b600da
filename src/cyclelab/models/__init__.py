"""Networks: generators, discriminators, the autoencoder, their initialisation and size rules.

The package itself imports nothing, so that :mod:`cyclelab.models.sizes` (the size rules the
params schema checks at every stage start) loads without torch; the builders looked up by the
names in ``params.yaml`` are in :mod:`cyclelab.models.build`."""
