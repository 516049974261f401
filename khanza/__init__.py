"""The only code that speaks Khanza SQL.

numbering.py     no_rawat / no_reg (queue number) / no_rkm_medis: formats and allocation (DayBook)
registration.py  one registration = one transaction (patient + visit/booking + ledger), per batch
patients.py      find (by NIK, BPJS card checked) or create a patient
visits.py        reg_periksa / booking_registrasi rows with the desktop's values
schedule.py      jadwal and kuota               masterdata.py  active codes, placeholders, schedules
ledger.py        the pipeline's exactly-once table    locks.py   the pipeline's named lock
cancellation.py  cancelling the Khanza way     reconcile.py  comparing Khanza with the website
db.py            engines, timeouts, transient errors  setup.py   `python -m khanza.setup`
capabilities.py  what this Khanza version has (older installations: defaults, enum values, what is missing)
"""
