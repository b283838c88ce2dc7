"""Ticket ingestion at scale: checking (normalize, document), ZIP reading (archive), bulk storing (store),
orchestration (batch) and the background task (tasks)."""
