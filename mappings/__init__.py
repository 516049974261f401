"""Website slugs -> Khanza codes: the YAML files here, their loader, and apply(df) (pure pandas).

Codes are checked against Khanza's active master data; an unmapped or unknown code rejects the
row with UNKNOWN_POLI / UNKNOWN_DOCTOR / UNKNOWN_PAYER, never a guess.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml

from khanza_sync.error_codes import ErrorCode

FILES = {"poliklinik": "poliklinik.yaml", "dokter": "dokter.yaml", "penjab": "penjab.yaml"}


@dataclass(frozen=True)
class Mappings:
    poliklinik: dict[str, str]
    dokter: dict[str, str]
    penjab: dict[str, str]


class MappingFileError(ValueError):
    pass


def load(directory: Path | str) -> Mappings:
    directory = Path(directory)
    loaded = {}
    for name, filename in FILES.items():
        path = directory / filename
        data = yaml.safe_load(path.read_text()) or {}
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            raise MappingFileError(f"{path}: expected flat 'slug: CODE' pairs")
        loaded[name] = {str(k).strip().lower(): v.strip() for k, v in data.items()}
    return Mappings(**loaded)


@dataclass(frozen=True)
class KhanzaCodes:
    """The codes Khanza currently accepts (active rows)."""

    poli: frozenset[str]
    dokter: frozenset[str]
    penjab: frozenset[str]


# (website column, mapping, Khanza code set, target column, error) in the order rows are judged
_RULES = [
    ("poliklinik", "poliklinik", "poli", "kd_poli", ErrorCode.UNKNOWN_POLI),
    ("doctor", "dokter", "dokter", "kd_dokter", ErrorCode.UNKNOWN_DOCTOR),
    ("payment", "penjab", "penjab", "kd_pj", ErrorCode.UNKNOWN_PAYER),
]


def apply(df: pd.DataFrame, maps: Mappings, codes: KhanzaCodes) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Add kd_poli, kd_dokter, kd_pj. Returns (mapped rows, rejections[id, error_code, message])."""
    out = df.copy()
    error = pd.Series(pd.NA, index=out.index, dtype="object")
    for column, mapping, code_set, target, code in _RULES:
        slugs = out[column].astype("string").str.strip().str.lower()
        out[target] = slugs.map(getattr(maps, mapping)).astype("object")
        known = out[target].isin(getattr(codes, code_set))
        error = error.mask(error.isna() & ~known, code.value)
    bad = error.notna()
    rejections = pd.DataFrame({"id": out.loc[bad, "id"], "error_code": error[bad]})
    rejections["message"] = [ErrorCode(c).message for c in rejections["error_code"]]
    return out.loc[~bad].reset_index(drop=True), rejections.reset_index(drop=True)
