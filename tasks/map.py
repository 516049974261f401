from __future__ import annotations

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

import mappings
from khanza import masterdata
from khanza_sync.settings import get_settings
from tasks.resources import khanza_engine


@task(name="map", cache_policy=NO_CACHE, persist_result=False)
def map_registrations(valid: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Slugs -> Khanza codes, checked against Khanza's active master data: (mapped, rejections)."""
    settings = get_settings()
    maps = mappings.load(settings.mappings_dir)
    with khanza_engine(settings).connect() as conn:
        md = masterdata.load(conn)
    codes = mappings.KhanzaCodes(poli=frozenset(md.active_poli), dokter=frozenset(md.active_dokter),
                                 penjab=frozenset(md.active_penjab))
    return mappings.apply(valid, maps, codes)
