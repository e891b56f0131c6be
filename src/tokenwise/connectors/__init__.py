"""Connectors: scheduled pulls of the providers' usage and cost reports into a dataset of the user.

`pulls.py` holds the rules without I/O (which request a sync sends, how pulled buckets replace stored
ones, where the next sync resumes); `services/connectors.py` does the HTTP, storage and scheduling.
"""
