"""One module per flow; each is a short @flow that reads like the mission, plus a `python -m` CLI."""
from khanza_sync import privacy

privacy.install()  # mask NIK, BPJS and phone numbers in every log record before Prefect sees it
