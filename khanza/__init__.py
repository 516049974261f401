"""The only code that speaks Khanza SQL.

numbering.py  no_rawat / no_reg / no_rkm_medis      patients.py  find or create a patient
visits.py     reg_periksa / booking_registrasi rows  schedule.py  jadwal and kuota
ledger.py     the pipeline's exactly-once table      masterdata.py active codes and placeholders
locks.py      the pipeline's named lock              registration.py one registration = one transaction
db.py         engines, timeouts, transient errors    setup.py     `python -m khanza.setup`
"""
