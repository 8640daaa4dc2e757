"""Watching the served model and learning from it: the service's logs read back for a time
window, from a local folder or an object store (`logs`), monitoring against the training
data (`monitor`), corrections and doubtful answers turned into new raw data (`harvest`),
and a simulation of the whole loop on loopback (`simulate`).

May import: config, data, model, evaluate, report, serve, ship.
"""
