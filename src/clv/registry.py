"""The model registry: one row per booster.

A version's rows and the BTYD fit they name (btyd_fit_id, a row of btyd_fits) are all it
takes to score with it anywhere, without the warehouse (see ScoringModel.from_registry).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import lightgbm as lgb
import pandas as pd

from clv.features import MODEL_FEATURES
from clv.training import TrainingResult, quantile_column

REGISTRY_COLUMNS = (
    "model_version",
    "target",
    "objective",
    "quantile_level",
    "model_text",
    "feature_names",
    "parameters",
    "best_iteration",
    "calibration_scale",
    "training_cutoffs",
    "validation_cutoff",
    "cutoff_levels",
    "training_rows",
    "validation_rows",
    "validation_metric_name",
    "validation_metric",
    "as_of_date",
    "horizon_days",
    "trained_at",
    # Last: an existing registry gains these as new columns (on_schema_change).
    "btyd_fit_id",
    "calibrated_levels",
    "spend_model",
    "calibration",
    "seasonal_factor",
    "seasonal_ratios",
    "season",
    "seasonal_bands",
)


def new_model_version(trained_at: dt.datetime) -> str:
    """A sortable, readable version: the UTC training time to the second."""
    return trained_at.astimezone(dt.UTC).strftime("m%Y%m%dT%H%M%SZ")


def registry_rows(
    result: TrainingResult,
    model_version: str,
    trained_at: dt.datetime,
    as_of_date: dt.date,
    horizon_days: int,
    btyd_fit_id: str,
) -> pd.DataFrame:
    """btyd_fit_id names the fit at as_of_date whose forecast is the boosters' base when scoring."""
    rows = [
        {
            "model_version": model_version,
            "target": booster.target,
            "objective": booster.objective,
            # spend_given_purchase: the level of spend given a purchase it forecasts.
            "quantile_level": booster.quantile_level,
            "model_text": booster.booster.model_to_string(num_iteration=booster.best_iteration),
            "feature_names": json.dumps(list(MODEL_FEATURES)),
            "parameters": json.dumps(booster.parameters, sort_keys=True),
            "best_iteration": booster.best_iteration,
            "calibration_scale": 1.0,
            "training_cutoffs": json.dumps(result.training_cutoffs),
            "validation_cutoff": result.validation_cutoff,
            "cutoff_levels": json.dumps(result.cutoff_levels, sort_keys=True),
            "training_rows": result.training_rows,
            "validation_rows": result.validation_rows,
            "validation_metric_name": booster.validation_metric_name,
            "validation_metric": booster.validation_metric,
            "as_of_date": pd.Timestamp(as_of_date).date(),
            "horizon_days": horizon_days,
            "trained_at": trained_at.astimezone(dt.UTC).replace(tzinfo=None),
            "btyd_fit_id": btyd_fit_id,
            "calibrated_levels": json.dumps(
                {str(level): read for level, read in result.calibrated_levels.items()}
            ),
            "spend_model": result.spend_model,
            "calibration": result.calibration,
            "seasonal_factor": result.season.factor,
            "seasonal_ratios": json.dumps(result.season.ratios, sort_keys=True),
            "season": result.season.description,
            "seasonal_bands": result.season.bands_json,
        }
        for booster in result.boosters
    ]
    frame = pd.DataFrame(rows, columns=list(REGISTRY_COLUMNS))
    return frame.astype(
        {"quantile_level": "float64", "validation_metric": "float64", "seasonal_factor": "float64"}
    )


def write_model_files(version_rows: pd.DataFrame, btyd_fit: dict, folder: Path) -> list[Path]:
    """One version as files in folder: a LightGBM model file per booster (<target>.txt)
    and btyd.json, the btyd_fits row their base comes from."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for row in version_rows.itertuples(index=False):
        level = "" if pd.isna(row.quantile_level) else quantile_column(row.quantile_level)
        written.append(folder / f"{row.target}{level.removeprefix('spend')}.txt")
        written[-1].write_text(row.model_text)
    written.append(folder / "btyd.json")
    written[-1].write_text(json.dumps(btyd_fit, indent=2, default=str))
    return written


def feature_importance(registry: pd.DataFrame) -> pd.DataFrame:
    """Total gain per feature and booster, with its share of the booster's total gain."""
    rows = []
    for row in registry.itertuples(index=False):
        booster = lgb.Booster(model_str=row.model_text)
        # A spend booster per level: spend_given_purchase_p10, ...
        target = row.target
        if not pd.isna(row.quantile_level):
            target += quantile_column(row.quantile_level).removeprefix("spend")
        gains = booster.feature_importance(importance_type="gain")
        total = float(gains.sum()) or 1.0
        for feature, gain in zip(booster.feature_name(), gains, strict=True):
            rows.append(
                {
                    "model_version": row.model_version,
                    "target": target,
                    "feature": feature,
                    "gain": float(gain),
                    "gain_share": float(gain) / total,
                }
            )
    columns = ["model_version", "target", "feature", "gain", "gain_share"]
    return pd.DataFrame(rows, columns=columns).sort_values(
        ["target", "gain"], ascending=[True, False], ignore_index=True
    )
