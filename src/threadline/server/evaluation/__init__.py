"""Evaluators: an LLM judge scores whole sessions (or single traces), online when a
session ends and on demand; its answers become scores with source ``eval``."""
