"""One module per DVC stage in dvc.yaml; each has `main(argv)` and is run as `python -m`."""
