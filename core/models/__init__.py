from .audit import AuditEvent
from .jobs import JobRun, JobRunStatus
from .organisations import Membership, Organisation
from .tokens import ApiToken

__all__ = ["ApiToken", "AuditEvent", "JobRun", "JobRunStatus", "Membership", "Organisation"]
