"""Datasets: catalogue, download, preparation, unpaired loading and the embedded `digits` set."""
