"""Campaigns: creating them, versioned settings changes, and their status figures."""
