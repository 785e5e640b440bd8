"""The leads' side: escalation rules and queue, adjudication, final answers and the leads' forms."""
