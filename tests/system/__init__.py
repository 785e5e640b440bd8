"""Whole-system tests: settings, security, permission matrix, commands, admin, processes and faults."""
