"""Prefect @task wrappers, one per stage, each working on a whole batch. Retries live here.

Every task takes the run's `Resources` (settings + engines) from its flow; the work itself is done by
plain functions in khanza/, website/, data_checks/ and mappings/."""
