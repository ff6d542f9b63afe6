"""One simulated person: every event their CGM, meter, cuff, lab, watch and app would send, in upload order.

The glucose signal is baseline + dawn rise + meal responses − exercise dips − night-time lows (the "truth"),
and a CGM reads the truth plus AR(1) sensor noise every 5 minutes, with gaps now and then.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from uuid import UUID, uuid5
from zoneinfo import ZoneInfo

import numpy as np

from producers.photos import photo_ref, render_meal_photo
from producers.simulator import physiology as phys
from producers.simulator.plan import ACTIVITIES, DayPlan, PlannedExercise, PlannedMeal, local_time, plan_day
from producers.simulator.profiles import DAWN_CENTRE_H, DAWN_WIDTH_H, UserProfile, draw_profile
from schemas.events import (
    BloodPressureReading,
    BodyPosition,
    Event,
    ExerciseSession,
    GlucoseKind,
    GlucoseReading,
    HbA1cResult,
    MealContext,
    MealLogged,
    Source,
)
from schemas.topics import MEALS, READINGS, Topic
from schemas.units import GlucoseUnit, HbA1cUnit, hba1c_pct_to_mmol_mol, mg_dl_to_mmol_l

#: Namespace of simulated event ids: uuid5(namespace, "seed/user/start/sequence").
EVENT_ID_NAMESPACE = UUID("5b0e7a52-3f7c-4d1e-9a57-0f6c1d2b8e41")
CGM_INTERVAL = timedelta(minutes=5)
CGM_RANGE_MG_DL = (40.0, 400.0)  # what a CGM can display; beyond it reads LOW / HIGH
CGM_NOISE_AR1 = 0.85
HBA1C_INTERVAL_DAYS = (85.0, 95.0)
HBA1C_WINDOW_DAYS = 90
#: Meals and exercise older than this no longer move glucose.
STATE_HORIZON = timedelta(hours=12)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class SimulatedEvent:
    """An event, the topic it goes to, and a photo's bytes for the object store when it has one."""

    event: Event
    topic: Topic
    sequence: int
    photo: bytes | None = None


def _minutes(at: datetime) -> float:
    return (at - _EPOCH) / timedelta(minutes=1)


class UserSimulator:
    """Generates one user's events in [start, end), ordered by received_at (then creation order).

    All randomness comes from one numpy Generator seeded by (seed, user index), so users are independent of
    how many others are simulated, and a seed always gives the same events, ids included.
    """

    def __init__(self, seed: int, index: int, start: datetime, end: datetime) -> None:
        if seed < 0 or index < 0:
            raise ValueError(f"seed and user index must be ≥ 0, got seed={seed} index={index}")
        self.rng = np.random.default_rng([seed, index])
        self.profile: UserProfile = draw_profile(seed, index, self.rng)
        self.zone = ZoneInfo(self.profile.time_zone)
        self.start, self.end = start.astimezone(UTC), end.astimezone(UTC)
        self._id_prefix = f"{seed}/{index}/{self.start.isoformat()}"
        self._sequence = 0
        self._meals: list[tuple[float, float]] = []  # (minute, carbs g)
        self._exercise: list[tuple[float, float, float]] = []  # (start minute, duration min, drop mg/dL)
        self._dips: list[tuple[float, float, float]] = []  # (centre minute, depth mg/dL, width min)
        self._noise_mg_dl = 0.0
        self._last_cgm: deque[tuple[int, float]] = deque(maxlen=3)  # (grid index, mg/dL), for trend arrows
        self._truth_by_day: deque[tuple[float, int]] = deque(maxlen=HBA1C_WINDOW_DAYS)  # (sum, count)
        # An HbA1c at enrolment (on the first day), then about every three months.
        self._next_hba1c = self.start + timedelta(hours=self.rng.uniform(1, 12))
        self._cgm_origin = self.start + timedelta(seconds=self.profile.sensor_offset_s)

    # -- driver ---------------------------------------------------------------------------------
    def events(self) -> Iterator[SimulatedEvent]:
        pending: list[tuple[datetime, int, SimulatedEvent]] = []
        day = self.start.astimezone(self.zone).date()
        while (day_start := max(self.start, local_time(day, 0.0, self.zone))) < self.end:
            day_end = min(self.end, local_time(day + timedelta(days=1), 0.0, self.zone))
            for item in self._day(day, day_start, day_end):
                heapq.heappush(pending, (item.event.received_at, item.sequence, item))
            # Later days only hold events that happen (so are received) at or after day_end.
            while pending and pending[0][0] < day_end:
                yield heapq.heappop(pending)[2]
            day += timedelta(days=1)
        # What is left was uploaded after the window closed: not sent, so nothing lies in the future.

    def _day(self, day: date, t0: datetime, t1: datetime) -> list[SimulatedEvent]:
        plan = plan_day(day, self.profile, self.zone, self.rng)
        self._remember(plan, t0)
        out = self._cgm(t0, t1)
        out += [self._meal(meal) for meal in plan.meals if t0 <= meal.at < t1]
        if plan.exercise is not None and t0 <= plan.exercise.at < t1:
            out.append(self._exercise_event(plan.exercise))
        out += [self._fingerstick(at, context) for at, context in plan.fingersticks if t0 <= at < t1]
        out += [self._blood_pressure(at, morning) for at, morning in plan.blood_pressure if t0 <= at < t1]
        while self._next_hba1c < t1:
            if self._next_hba1c >= t0:
                out.append(self._hba1c(self._next_hba1c))
            self._next_hba1c += timedelta(days=self.rng.uniform(*HBA1C_INTERVAL_DAYS))
        return out

    def _remember(self, plan: DayPlan, t0: datetime) -> None:
        horizon = _minutes(t0 - STATE_HORIZON)
        self._meals = [m for m in self._meals if m[0] >= horizon] + [(_minutes(m.at), m.carbs_g) for m in plan.meals]
        self._exercise = [e for e in self._exercise if e[0] >= horizon]
        if plan.exercise is not None:
            # About 25 mg/dL for 45 min of running; without insulin, exercise rarely causes a low.
            drop = min(40.0, plan.exercise.met * plan.exercise.duration_min / 15)
            self._exercise.append((_minutes(plan.exercise.at), plan.exercise.duration_min, drop))
        self._dips = [d for d in self._dips if d[0] >= horizon]
        if plan.night_low is not None:
            low = plan.night_low
            before = float(self._truth([low.centre])[0])
            self._dips.append((_minutes(low.centre), max(0.0, before - low.nadir_mg_dl), low.width_min))

    # -- the glucose signal ---------------------------------------------------------------------
    def _truth(self, times: list[datetime]) -> phys.FloatArray:
        p = self.profile
        t = np.array([_minutes(at) for at in times])
        local_hours = np.array([_local_hour(at, self.zone) for at in times])
        glucose = p.baseline_mg_dl + p.dawn_rise_mg_dl * phys.bump(local_hours, DAWN_CENTRE_H, DAWN_WIDTH_H)
        for when, carbs_g in self._meals:
            glucose += p.meal_gain_mg_dl_per_g * carbs_g * phys.meal_shape(t - when, p.meal_peak_min)
        for began, duration_min, drop in self._exercise:
            glucose -= drop * phys.exercise_shape(t - began, duration_min)
        for centre, depth, width in self._dips:
            glucose -= depth * phys.bump(t, centre, width)
        return np.asarray(np.clip(glucose, *CGM_RANGE_MG_DL), dtype=np.float64)

    def _cgm(self, t0: datetime, t1: datetime) -> list[SimulatedEvent]:
        first = math.ceil((t0 - self._cgm_origin) / CGM_INTERVAL)
        last = math.ceil((t1 - self._cgm_origin) / CGM_INTERVAL)  # exclusive
        if last <= first:
            return []
        times = [self._cgm_origin + k * CGM_INTERVAL for k in range(first, last)]
        truth = self._truth(times)
        self._truth_by_day.append((float(truth.sum()), len(truth)))
        present = np.ones(len(times), dtype=bool)
        if self.rng.random() < self.profile.sensor_gap_probability:  # warm-up, compression, lost signal
            gap_start = int(self.rng.integers(len(times)))
            present[gap_start:gap_start + int(self.rng.integers(4, 37))] = False
        shocks = (self.rng.standard_normal(len(times)) * self.profile.noise_sd_mg_dl
                  * math.sqrt(1 - CGM_NOISE_AR1**2)).tolist()
        delays_s = self.rng.uniform(5, 90, size=len(times)).tolist()
        truth_mg_dl = truth.tolist()
        out = []
        for i, at in enumerate(times):
            self._noise_mg_dl = CGM_NOISE_AR1 * self._noise_mg_dl + shocks[i]
            if not present[i]:
                continue
            k = first + i
            value = min(max(float(round(truth_mg_dl[i] + self._noise_mg_dl)), CGM_RANGE_MG_DL[0]), CGM_RANGE_MG_DL[1])
            trend = None
            earlier = [v for j, v in self._last_cgm if j == k - 3]
            if earlier:
                trend = phys.trend_for_rate((value - earlier[0]) / 15.0)
            self._last_cgm.append((k, value))
            event_id, sequence = self._next_id()
            event = GlucoseReading(event_id=event_id, user_id=self.profile.user_id,
                                   device_id=f"{self.profile.user_id}-cgm", source=Source.SIMULATOR,
                                   occurred_at=at, received_at=at + timedelta(seconds=delays_s[i]),
                                   unit=GlucoseUnit.MG_DL, value=value, kind=GlucoseKind.CGM, trend=trend)
            out.append(SimulatedEvent(event, READINGS, sequence))
        return out

    # -- other events ---------------------------------------------------------------------------
    def _fingerstick(self, at: datetime, context: MealContext) -> SimulatedEvent:
        truth = float(self._truth([at])[0])
        measured_mg_dl = max(20.0, truth * (1 + self.rng.normal(0, 0.04)))  # meters: ±4 % (1 SD)
        unit = self.profile.glucose_unit
        if unit is GlucoseUnit.MMOL_L:
            value = round(mg_dl_to_mmol_l(measured_mg_dl), 1)
        else:
            value = float(round(measured_mg_dl))
        event_id, sequence = self._next_id()
        event = GlucoseReading(event_id=event_id, user_id=self.profile.user_id,
                               device_id=f"{self.profile.user_id}-meter", source=Source.SIMULATOR, occurred_at=at,
                               received_at=at + timedelta(minutes=self.rng.uniform(0.5, 3)), unit=unit, value=value,
                               kind=GlucoseKind.FINGERSTICK, meal_context=context)
        return SimulatedEvent(event, READINGS, sequence)

    def _blood_pressure(self, at: datetime, morning: bool) -> SimulatedEvent:
        p = self.profile
        # Morning surge: blood pressure is highest in the first hours after waking.
        systolic = round(p.systolic_mmhg + (8 if morning else 0) + self.rng.normal(0, 7))
        diastolic = min(round(p.diastolic_mmhg + (4 if morning else 0) + self.rng.normal(0, 5)), systolic - 15)
        pulse = round(p.pulse_bpm + self.rng.normal(0, 5))
        event_id, sequence = self._next_id()
        event = BloodPressureReading(event_id=event_id, user_id=p.user_id, device_id=f"{p.user_id}-cuff",
                                     source=Source.SIMULATOR, occurred_at=at,
                                     received_at=at + timedelta(minutes=self.rng.uniform(0.2, 2)),
                                     systolic_mmhg=int(systolic), diastolic_mmhg=int(diastolic), pulse_bpm=int(pulse),
                                     arm=p.arm, position=BodyPosition.SITTING)
        return SimulatedEvent(event, READINGS, sequence)

    def _hba1c(self, at: datetime) -> SimulatedEvent:
        p = self.profile
        # The last 90 days: the simulated days, and before the simulation the profile's long-run mean.
        total = sum(s for s, _ in self._truth_by_day)
        count = sum(n for _, n in self._truth_by_day)
        per_day = 24 * 60 // 5
        missing = max(0, HBA1C_WINDOW_DAYS * per_day - count)
        mean_mg_dl = (total + missing * p.target_mean_glucose_mg_dl) / (count + missing)
        pct = round(phys.hba1c_pct_for_mean_glucose(mean_mg_dl) + self.rng.normal(0, 0.15), 1)
        value = float(round(hba1c_pct_to_mmol_mol(pct))) if p.hba1c_unit is HbA1cUnit.MMOL_MOL else pct
        event_id, sequence = self._next_id()
        event = HbA1cResult(event_id=event_id, user_id=p.user_id, device_id="lab", source=Source.SIMULATOR,
                            occurred_at=at, received_at=at + timedelta(hours=self.rng.uniform(2, 8)),
                            unit=p.hba1c_unit, value=value)
        return SimulatedEvent(event, READINGS, sequence)

    def _exercise_event(self, session: PlannedExercise) -> SimulatedEvent:
        p = self.profile
        _, met, heart_rate, cadence = ACTIVITIES[session.activity]
        steps = None if cadence is None else round(self.rng.uniform(*cadence) * session.duration_min)
        ended = session.at + timedelta(minutes=session.duration_min)
        event_id, sequence = self._next_id()
        event = ExerciseSession(event_id=event_id, user_id=p.user_id, device_id=f"{p.user_id}-watch",
                                source=Source.SIMULATOR, occurred_at=session.at,
                                received_at=ended + timedelta(minutes=self.rng.uniform(1, 10)),
                                activity=session.activity, duration_min=session.duration_min,
                                energy_kcal=float(round(met * p.weight_kg * session.duration_min / 60)),
                                steps=steps, mean_heart_rate_bpm=int(self.rng.integers(*heart_rate)))
        return SimulatedEvent(event, READINGS, sequence)

    def _meal(self, meal: PlannedMeal) -> SimulatedEvent:
        p, rng = self.profile, self.rng
        carbs = protein = fat = energy = None
        if rng.random() < p.logs_macros_probability:
            carbs = float(round(meal.carbs_g * rng.uniform(0.8, 1.2) / 5) * 5)  # people estimate in 5 g steps
            protein, fat = float(round(rng.uniform(8, 40))), float(round(rng.uniform(5, 35)))
            energy = float(round((4 * carbs + 4 * protein + 9 * fat) / 10) * 10)
        event_id, sequence = self._next_id()
        photo_bytes = photo = None
        if rng.random() < p.photo_probability:
            photo_bytes = render_meal_photo(int(rng.integers(2**32)))
            photo = photo_ref(f"meal-photos/{p.user_id}/{event_id}.jpg", photo_bytes)
        event = MealLogged(event_id=event_id, user_id=p.user_id, device_id=f"{p.user_id}-app", source=Source.SIMULATOR,
                           occurred_at=meal.at, received_at=meal.at + timedelta(minutes=rng.uniform(1, 25)),
                           meal_slot=meal.slot, energy_kcal=energy, carbs_g=carbs, protein_g=protein, fat_g=fat,
                           photo=photo)
        return SimulatedEvent(event, MEALS, sequence, photo_bytes)

    def _next_id(self) -> tuple[UUID, int]:
        self._sequence += 1
        return uuid5(EVENT_ID_NAMESPACE, f"{self._id_prefix}/{self._sequence}"), self._sequence


def _local_hour(at: datetime, zone: ZoneInfo) -> float:
    local = at.astimezone(zone)
    return local.hour + local.minute / 60


def simulate_user(seed: int, index: int, start: datetime, end: datetime) -> Iterator[SimulatedEvent]:
    """Shorthand for UserSimulator(...).events()."""
    return UserSimulator(seed, index, start, end).events()
