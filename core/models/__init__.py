from .audit import AuditEvent
from .organisations import Membership, Organisation

__all__ = ["AuditEvent", "Membership", "Organisation"]
