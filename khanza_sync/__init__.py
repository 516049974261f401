"""Khanza Sync: online hospital registrations into SIMRS Khanza (settings, error codes, outcomes, privacy, CLI)."""
