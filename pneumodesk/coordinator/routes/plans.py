"""Training plans: publishing (operators) and reading them (operators and nodes).

No ``from __future__ import annotations``: FastAPI evaluates the handlers' annotations. A plan's body is read raw:
the plan's own validation (``TrainingPlan``) judges it, and its canonical bytes define its hash.
"""

from functools import partial

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from pneumodesk.federation.messages import API_PREFIX, PlanSummary

from .context import ERRORS, Anyone, OperatorName, Service

operator_router = APIRouter(prefix=API_PREFIX, tags=["operators"], responses=ERRORS)
router = APIRouter(prefix=API_PREFIX, tags=["plans"], responses=ERRORS)


@operator_router.post("/plans", response_model=PlanSummary, status_code=201)
async def publish(request: Request, service: Service, who: OperatorName) -> PlanSummary:
    return await run_in_threadpool(partial(service.publish_plan, actor=who), await request.body())


@router.get("/plans", response_model=list[PlanSummary])
async def plans(service: Service, _who: Anyone) -> list[PlanSummary]:
    return await run_in_threadpool(service.list_plans)


@router.get("/plans/{sha}", response_model=PlanSummary)
async def plan(sha: str, service: Service, _who: Anyone) -> PlanSummary:
    return await run_in_threadpool(service.get_plan, sha)
