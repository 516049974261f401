from __future__ import annotations

import pandas as pd

import mappings
from khanza import masterdata
from tasks.resources import Resources
from tasks.retry import khanza_retry, step


@step("map", retry=khanza_retry)
def map_registrations(res: Resources, valid: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Slugs -> Khanza codes, checked against Khanza's active master data: (mapped, rejections)."""
    maps = mappings.load(res.settings.mappings_dir)
    with res.khanza.connect() as conn:
        md = masterdata.load(conn)
    codes = mappings.KhanzaCodes(poli=frozenset(md.active_poli), dokter=frozenset(md.active_dokter),
                                 penjab=frozenset(md.active_penjab))
    return mappings.apply(valid, maps, codes)
