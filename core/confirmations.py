"""Changes that take effect only when a second steward confirms them.

One mechanism for every change that must not rest on one person's word:

* ``role``: a user becomes steward or admin (a new account with that role, or a
  role change). Until it is confirmed the user keeps the role it had (a new
  account is an analyst with no grants, so it can see nothing);
* ``budget``: a dataset's budget is raised above the confirm ceiling
  (SYNTHGATE_BUDGET_CONFIRM_EPSILON / _DELTA). Until it is confirmed the dataset
  keeps its budget (a new dataset is registered at the ceiling).

Rules, checked on the server:

* a change is confirmed by an active steward who is neither the one who
  requested it nor (for a role) the user it elevates;
* a change is applied at confirmation, re-checked against the state of that
  moment (a budget is still within the maximum and not below its spending);
* a newer request for the same object supersedes the older one;
* a change may be rejected by any steward or admin, or withdrawn by whoever
  requested it;
* every request, confirmation, rejection and application is in the audit log.

Budgets above SYNTHGATE_BUDGET_MAX_EPSILON / _DELTA are refused outright.
Accounts are not persons: the rule keeps one *account* from confirming its own
request; that the second account belongs to a second person is the
organisation's part (the first stewards are created on the server's machine).
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import audit
from core.errors import Conflict, Forbidden, InvalidRequest, NotFound
from core.models import Dataset, PendingChange, Role, User, utcnow
from core.settings import Settings, get_settings

__all__ = [
    "BUDGET",
    "ELEVATED_ROLES",
    "ROLE",
    "budget_limits",
    "change_view",
    "check_budget",
    "confirm",
    "pending",
    "pending_for",
    "reject",
    "request_change",
]

ROLE = "role"
BUDGET = "budget"
ELEVATED_ROLES = (Role.steward.value, Role.admin.value)
PENDING = "pending"


def _name(actor: User | str) -> str:
    return actor if isinstance(actor, str) else actor.username


def request_change(
    session: Session,
    actor: User | str,
    kind: str,
    object_type: str,
    object_id: int,
    payload: dict[str, Any],
    reason: str | None = None,
) -> PendingChange:
    """Record a change that waits for a second steward; an older pending one for the same object is superseded."""
    for old in session.execute(
        select(PendingChange).where(
            PendingChange.kind == kind,
            PendingChange.object_type == object_type,
            PendingChange.object_id == object_id,
            PendingChange.status == PENDING,
        )
    ).scalars():
        old.status = "superseded"
        old.decided_at = utcnow()
    change = PendingChange(
        kind=kind,
        object_type=object_type,
        object_id=object_id,
        payload=payload,
        status=PENDING,
        requested_by=None if isinstance(actor, str) else actor.id,
        requested_by_name=_name(actor)[:64],
        comment=reason,
    )
    session.add(change)
    session.flush()
    audit.record(
        session,
        "confirmation.request",
        actor=actor,
        object_type=object_type,
        object_id=object_id,
        detail={"change": change.id, "kind": kind, "payload": payload},
    )
    return change


def _pending_or_404(session: Session, change_id: int) -> PendingChange:
    change = session.get(PendingChange, change_id, with_for_update=True)
    if change is None:
        raise NotFound(f"no change {change_id} awaiting confirmation", field="change")
    if change.status != PENDING:
        raise Conflict(f"change {change_id} is already {change.status}", field="change")
    return change


def confirm(
    session: Session, actor: User, change_id: int, comment: str | None = None, settings: Settings | None = None
) -> PendingChange:
    """A second steward confirms a pending change, which is applied now."""
    change = _pending_or_404(session, change_id)
    if actor.role != Role.steward.value or not actor.active or actor.must_change_password:
        raise Forbidden(f"confirming a change needs an active steward; you are {actor.role}")
    if change.requested_by == actor.id:
        raise Forbidden("four eyes: a change is confirmed by a steward other than the one who asked for it")
    if change.kind == ROLE and change.object_id == actor.id:
        raise Forbidden("four eyes: you cannot confirm your own role change")
    if change.kind == ROLE:
        _apply_role(session, actor, change)
    elif change.kind == BUDGET:
        _apply_budget(session, actor, change, settings or get_settings())
    else:  # pragma: no cover - only the kinds above are ever recorded
        raise Conflict(f"unknown kind of change {change.kind!r}")
    return _decide(session, actor, change, "confirmed", comment, requested_by=change.requested_by_name)


def reject(session: Session, actor: User, change_id: int, comment: str | None = None) -> PendingChange:
    """Reject a pending change (a steward or an admin), or withdraw one's own request."""
    change = _pending_or_404(session, change_id)
    if actor.role not in ELEVATED_ROLES and change.requested_by != actor.id:
        raise Forbidden(f"rejecting a change needs the steward or admin role; you are {actor.role}")
    return _decide(session, actor, change, "rejected", comment)


def _decide(
    session: Session, actor: User, change: PendingChange, status: str, comment: str | None, **detail: Any
) -> PendingChange:
    """Close a pending change as confirmed or rejected, and audit the decision."""
    change.status = status
    change.decided_by = actor.id
    change.decided_at = utcnow()
    action = {"confirmed": "confirmation.confirm", "rejected": "confirmation.reject"}[status]
    audit.record(
        session,
        action,
        actor=actor,
        object_type=change.object_type,
        object_id=change.object_id,
        detail={"change": change.id, "kind": change.kind, **detail, "payload": change.payload, "comment": comment},
    )
    return change


def pending(session: Session, actor: User) -> list[PendingChange]:
    """Every change awaiting confirmation (stewards and admins), oldest first."""
    if actor.role not in ELEVATED_ROLES:
        raise Forbidden(f"the changes awaiting confirmation are for stewards and admins; you are {actor.role}")
    return list(
        session.execute(
            select(PendingChange).where(PendingChange.status == PENDING).order_by(PendingChange.id)
        ).scalars()
    )


def pending_for(session: Session, object_type: str, object_id: int) -> list[PendingChange]:
    return list(
        session.execute(
            select(PendingChange)
            .where(
                PendingChange.object_type == object_type,
                PendingChange.object_id == object_id,
                PendingChange.status == PENDING,
            )
            .order_by(PendingChange.id)
        ).scalars()
    )


def change_view(change: PendingChange) -> dict[str, Any]:
    def iso(value: Any) -> str | None:
        return value.isoformat(timespec="seconds") if value else None

    return {
        "id": change.id,
        "kind": change.kind,
        "object_type": change.object_type,
        "object_id": change.object_id,
        "payload": change.payload,
        "status": change.status,
        "requested_by": change.requested_by_name,
        "requested_at": iso(change.requested_at),
        "decided_at": iso(change.decided_at),
        "reason": change.comment,
    }


# ------------------------------------------------------------------------------------------------
# roles
# ------------------------------------------------------------------------------------------------


def _apply_role(session: Session, actor: User, change: PendingChange) -> None:
    from core.auth import end_all_sessions

    user = session.get(User, change.object_id)
    if user is None:
        raise NotFound(f"no user {change.object_id}", field="user")
    new_role = str(change.payload.get("role"))
    before = user.role
    user.role = new_role
    ended = end_all_sessions(session, user.id, "role change")
    audit.record(
        session,
        "user.role_change",
        actor=actor,
        object_type="user",
        object_id=user.id,
        detail={
            "username": user.username,
            "before": before,
            "after": new_role,
            "requested_by": change.requested_by_name,
            "sessions_ended": ended,
        },
    )


# ------------------------------------------------------------------------------------------------
# budgets
# ------------------------------------------------------------------------------------------------


def budget_limits(settings: Settings) -> dict[str, Fraction]:
    from privacy.budget import parse_number

    return {
        "confirm_epsilon": parse_number(settings.budget_confirm_epsilon, "budget_confirm_epsilon"),
        "max_epsilon": parse_number(settings.budget_max_epsilon, "budget_max_epsilon"),
        "confirm_delta": parse_number(settings.budget_confirm_delta, "budget_confirm_delta"),
        "max_delta": parse_number(settings.budget_max_delta, "budget_max_delta"),
    }


def check_budget(
    settings: Settings, epsilon: Fraction, delta: Fraction, current: tuple[Fraction, Fraction] | None = None
) -> bool:
    """Refuse an absurd budget; True when the change is a raise above the ceiling (a second steward confirms).

    `current` is the budget in force (None for a new dataset).
    """
    from privacy.budget import format_value

    limits = budget_limits(settings)
    if epsilon > limits["max_epsilon"]:
        raise InvalidRequest(
            f"epsilon_budget {format_value(epsilon)} is above the maximum of "
            f"{format_value(limits['max_epsilon'])} (SYNTHGATE_BUDGET_MAX_EPSILON); "
            "choose a smaller budget",
            field="epsilon_budget",
        )
    if delta > limits["max_delta"]:
        raise InvalidRequest(
            f"delta_budget {format_value(delta)} is above the maximum of "
            f"{format_value(limits['max_delta'])} (SYNTHGATE_BUDGET_MAX_DELTA); "
            "choose a smaller budget",
            field="delta_budget",
        )
    cur_eps, cur_delta = current if current is not None else (Fraction(0), Fraction(0))
    return (epsilon > limits["confirm_epsilon"] and epsilon > cur_eps) or (
        delta > limits["confirm_delta"] and delta > cur_delta
    )


def capped_budget(settings: Settings, epsilon: Fraction, delta: Fraction) -> tuple[Fraction, Fraction]:
    """The budget a new dataset starts with while a raise above the ceiling waits for confirmation."""
    limits = budget_limits(settings)
    return min(epsilon, limits["confirm_epsilon"]), min(delta, limits["confirm_delta"])


def _apply_budget(session: Session, actor: User, change: PendingChange, settings: Settings) -> None:
    from core import ledger
    from privacy.budget import PrivacyBudget, PrivacyCost, format_value

    if session.get(Dataset, change.object_id) is None:
        raise NotFound(f"no dataset {change.object_id}", field="dataset")
    locked = ledger.lock_dataset(session, change.object_id)
    assert locked is not None
    budget = PrivacyBudget(Fraction(change.payload["epsilon_budget"]), Fraction(change.payload["delta_budget"]))
    check_budget(settings, budget.epsilon, budget.delta)
    spent, reserved = ledger.committed_costs(session, locked.id)
    committed = sum((c for c in spent + reserved if c.is_dp), PrivacyCost.zero())
    if committed.epsilon > budget.epsilon or committed.delta > budget.delta:
        raise Conflict(
            f"the confirmed budget would be below what is already committed (epsilon "
            f"{format_value(committed.epsilon)}); reject this change",
            field="epsilon_budget",
        )
    before = {"epsilon_budget": locked.epsilon_budget, "delta_budget": locked.delta_budget}
    locked.epsilon_budget = str(budget.epsilon)
    locked.delta_budget = str(budget.delta)
    audit.record(
        session,
        "dataset.budget_confirmed",
        actor=actor,
        object_type="dataset",
        object_id=locked.id,
        detail={
            "before": before,
            "after": {"epsilon_budget": locked.epsilon_budget, "delta_budget": locked.delta_budget},
            "requested_by": change.requested_by_name,
        },
    )
