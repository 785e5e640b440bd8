"""Tests of reviews/leads: escalation rules and states, adjudication, the leads' pages."""
