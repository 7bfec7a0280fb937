"""The coordinator's operations, one service per area; ``coordinator.service.CoordinatorService`` is their façade."""

from .enrolment import EnrolmentService, new_enrolment_code
from .models import ModelService
from .operators import OperatorService
from .plans import PlanService
from .rounds import RoundService

__all__ = ["EnrolmentService", "ModelService", "OperatorService", "PlanService", "RoundService",
           "new_enrolment_code"]
