"""The labelers' side: the queue (leases, submit, skip, escalate), its forms, progress and gold items."""
