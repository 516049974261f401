"""Prefect @task wrappers, one per stage, each working on a whole batch. Retries live here."""
