"""Making the template your project: `make init` (`adopt`) reads your data (`columnstats`),
settles label sets (`labelset`) and field names (`fieldname`) and writes the declaration
(`declaration`); params profiles (`profile`) and the checks before a run (`preflight`).

May import: config, data, evaluate.
"""
