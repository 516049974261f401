"""The website registration store (the only code that speaks to the website database)."""
