"""Redaction on the server: per-project rules applied to spans at ingest, before they
are stored (rules.py: the rules as plain data; detectors.py: the built-in ones;
redactor.py: rules applied to SpanRecords; project_rules.py: each project's rules, read
by the ingest path)."""
