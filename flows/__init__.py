"""One module per flow; each is a short @flow that reads like the mission, plus a `python -m` CLI."""
