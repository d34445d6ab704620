"""synthgate's privacy library: public schema, synthesizers, DP accounting and
disclosure control. Pure: imports no Flask, Celery or database code.

Heavy dependencies (torch, JAX, SDV, smartnoise) load only when a method that
needs them is created.
"""

from privacy.budget import INFINITE, PrivacyBudget, PrivacyCost
from privacy.errors import (
    BudgetExceeded,
    DomainTooLarge,
    InvalidPrivacyValue,
    MethodOptionError,
    PolicyViolation,
    PrivacyError,
    SchemaError,
    UnknownMethod,
)

__all__ = [
    "INFINITE",
    "BudgetExceeded",
    "DomainTooLarge",
    "InvalidPrivacyValue",
    "MethodOptionError",
    "PolicyViolation",
    "PrivacyBudget",
    "PrivacyCost",
    "PrivacyError",
    "SchemaError",
    "UnknownMethod",
]
