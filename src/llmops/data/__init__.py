"""The data: raw files found and decoded (`sources`, `readers`, `csvrows`), rows checked
against the task (`records`), PII and secrets redacted (`redact`, `piinumbers`,
`secretscan`), rows kept on disk (`rowstore`) and split without leaks (`split`).

May import: config.
"""
