"""The `schedule` field: a cron or preset, null for manual runs, or the outputs of other batches.

    schedule: "0 3 * * *"
    schedule: {after: [churn_training.ensemble]}                     # when that step commits a new output
    schedule: {after: [churn_training.ensemble], cron: "0 6 * * *"}  # ... and also every day at 06:00

Imported at DAG parse time: pydantic only. Whether the named batches and steps exist is checked
against the other specs of the folder by mlbatch.spec.upstream.
"""
from __future__ import annotations

import re
from typing import Annotated, Union

from pydantic import AfterValidator, BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator

from mlbatch.spec.checks import SpecValueError
from mlbatch.spec.fields import DAG_ID_PATTERN, Schedule

STEP_REF_FORM = "'<batch>.<step>', e.g. churn_training.ensemble"
_STEP_REF = re.compile(rf"{DAG_ID_PATTERN}\.[A-Za-z0-9_-]+")  # a dag_id may hold dots, a step name not


def split_ref(ref: str) -> tuple[str, str]:
    """'churn_training.ensemble' -> ('churn_training', 'ensemble')."""
    dag_id, _, step = ref.rpartition(".")
    return dag_id, step


def _ref_check(value: str) -> str:
    if not _STEP_REF.fullmatch(value):
        raise SpecValueError(f"{value!r} does not name a step of a batch", f"write it as {STEP_REF_FORM}")
    return value


StepRef = Annotated[str, AfterValidator(_ref_check)]


class AfterSchedule(BaseModel):
    """Run when every step named in `after` has committed a new output since this batch's last run
    (Airflow asset events); with `cron`, also on that cron (Airflow's AssetOrTimeSchedule)."""

    model_config = ConfigDict(extra="forbid")

    after: list[StepRef] = Field(min_length=1)
    cron: Schedule = None

    @field_validator("cron")
    @classmethod
    def _repeating(cls, value: str | None) -> str | None:
        if value == "@once":
            raise SpecValueError("cron '@once' cannot be combined with after",
                                 "use a repeating cron or preset (e.g. '0 6 * * *', '@daily'), or leave cron out")
        return value


BatchSchedule = Annotated[
    Union[Annotated[Schedule, Tag("expression")], Annotated[AfterSchedule, Tag("assets")]],
    Discriminator(lambda value: "assets" if isinstance(value, (dict, AfterSchedule)) else "expression"),
]
SCHEDULE_TAGS = {"expression", "assets"}  # pydantic puts the union's tag into error locations
