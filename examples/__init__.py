"""Worked examples: each folder declares a task, brings its data generator and its tests.

`make init` removes them (each one's example.yaml lists the files it owns elsewhere).
"""
