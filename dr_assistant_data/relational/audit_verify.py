"""The documented import path of the audit log's public checks, kept where applications found it.

``check_proof`` lets a reader holding only the signing key check that an event is in the
log; the code lives in ``audit/verify.py``, this module only names it here too.
"""

from .audit.verify import AuditReport, InclusionProof, check_proof

__all__ = ["AuditReport", "InclusionProof", "check_proof"]
