"""Who the simulated people are: glycaemic control, blood pressure, habits, time zone and units."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from producers.simulator.physiology import MEAL_SHAPE_AREA_PER_PEAK_MIN
from schemas.events import Arm
from schemas.units import GlucoseUnit, HbA1cUnit

#: Time zones, with the units people there usually see (UK and Australia: mmol/L; UK and Germany: IFCC HbA1c).
TIME_ZONES: tuple[tuple[str, GlucoseUnit, HbA1cUnit], ...] = (
    ("America/New_York", GlucoseUnit.MG_DL, HbA1cUnit.PERCENT),
    ("America/Los_Angeles", GlucoseUnit.MG_DL, HbA1cUnit.PERCENT),
    ("Europe/Berlin", GlucoseUnit.MG_DL, HbA1cUnit.MMOL_MOL),
    ("Europe/London", GlucoseUnit.MMOL_L, HbA1cUnit.MMOL_MOL),
    ("Asia/Seoul", GlucoseUnit.MG_DL, HbA1cUnit.PERCENT),
    ("Australia/Sydney", GlucoseUnit.MMOL_L, HbA1cUnit.PERCENT),
)

#: Mean carbohydrate of the meal plan in meal.py (breakfast + lunch + dinner + one snack), for calibration.
EXPECTED_DAILY_CARBS_G = 195.0
DAWN_CENTRE_H, DAWN_WIDTH_H = 6.5, 1.5


class Control(StrEnum):
    """How well a person's glucose is controlled."""

    WELL = "well"
    POOR = "poor"
    NIGHT_LOWS = "night_lows"  # well controlled by day, with hypoglycaemia some nights


CONTROL_WEIGHTS = {Control.WELL: 0.5, Control.POOR: 0.35, Control.NIGHT_LOWS: 0.15}
HYPERTENSIVE_PROBABILITY = 0.45


@dataclass(frozen=True)
class UserProfile:
    index: int
    user_id: str
    time_zone: str
    glucose_unit: GlucoseUnit
    hba1c_unit: HbA1cUnit
    control: Control
    hypertensive: bool
    # glucose
    target_mean_glucose_mg_dl: float
    meal_gain_mg_dl_per_g: float
    meal_peak_min: float
    dawn_rise_mg_dl: float
    noise_sd_mg_dl: float
    night_low_probability: float
    sensor_gap_probability: float
    sensor_offset_s: int
    fingersticks_per_day: tuple[int, int]
    # blood pressure
    systolic_mmhg: float
    diastolic_mmhg: float
    pulse_bpm: float
    arm: Arm
    # habits
    exercise_probability: float
    weight_kg: float
    logs_macros_probability: float
    photo_probability: float

    @property
    def baseline_mg_dl(self) -> float:
        """Fasting level that makes the long-run mean land on the target (meals and dawn rise add the rest)."""
        meals = EXPECTED_DAILY_CARBS_G * self.meal_gain_mg_dl_per_g * MEAL_SHAPE_AREA_PER_PEAK_MIN \
            * self.meal_peak_min / (24 * 60)
        dawn = self.dawn_rise_mg_dl * DAWN_WIDTH_H * float(np.sqrt(2 * np.pi)) / 24
        return self.target_mean_glucose_mg_dl - meals - dawn


def draw_profile(seed: int, index: int, rng: np.random.Generator) -> UserProfile:
    """A person, drawn from `rng` (the user's own generator, so profiles don't depend on the user count)."""
    zone, glucose_unit, hba1c_unit = TIME_ZONES[int(rng.integers(len(TIME_ZONES)))]
    control = Control(rng.choice([c.value for c in CONTROL_WEIGHTS], p=list(CONTROL_WEIGHTS.values())))
    hypertensive = bool(rng.random() < HYPERTENSIVE_PROBABILITY)
    if control is Control.POOR:
        target, gain = rng.uniform(185, 240), rng.uniform(2.0, 2.8)
        noise, dawn = rng.uniform(9, 13), rng.uniform(20, 35)
    else:
        target, gain = rng.uniform(115, 140), rng.uniform(0.9, 1.3)
        noise, dawn = rng.uniform(4, 7), rng.uniform(5, 15)
    low_fs = int(rng.integers(1, 3))
    if hypertensive:
        systolic, diastolic = rng.uniform(140, 160), rng.uniform(88, 98)
    else:
        systolic, diastolic = rng.uniform(110, 128), rng.uniform(68, 80)
    return UserProfile(
        index=index,
        user_id=f"sim-{seed}-{index}",
        time_zone=zone,
        glucose_unit=glucose_unit,
        hba1c_unit=hba1c_unit,
        control=control,
        hypertensive=hypertensive,
        target_mean_glucose_mg_dl=float(target),
        meal_gain_mg_dl_per_g=float(gain),
        meal_peak_min=float(rng.uniform(45, 60)),
        dawn_rise_mg_dl=float(dawn),
        noise_sd_mg_dl=float(noise),
        night_low_probability=0.5 if control is Control.NIGHT_LOWS else 0.0,
        sensor_gap_probability=float(rng.uniform(0.05, 0.25)),
        sensor_offset_s=int(rng.integers(300)),
        fingersticks_per_day=(low_fs, int(rng.integers(low_fs, 5))),
        systolic_mmhg=float(systolic),
        diastolic_mmhg=float(diastolic),
        pulse_bpm=float(rng.uniform(60, 85)),
        arm=Arm.LEFT if rng.random() < 0.8 else Arm.RIGHT,
        exercise_probability=float(rng.uniform(0.15, 0.7)),
        weight_kg=float(rng.uniform(58, 115)),
        logs_macros_probability=float(rng.uniform(0.2, 0.9)),
        photo_probability=float(rng.uniform(0.0, 0.5)),
    )
