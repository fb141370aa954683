from .audit import AuditEvent
from .jobs import JobRun, JobRunStatus
from .organisations import Membership, Organisation

__all__ = ["AuditEvent", "JobRun", "JobRunStatus", "Membership", "Organisation"]
