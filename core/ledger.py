"""The budget ledger on the database: reserve, spend, release, and read.

Rules (privacy/accounting.py holds the arithmetic):

* `reserve` runs inside a `write_session` after locking the dataset row, so the
  check and the insert are one transaction on SQLite (BEGIN IMMEDIATE) and on
  PostgreSQL (SELECT ... FOR UPDATE). Many simultaneous requests never
  overspend.
* A job's charge moves reserve -> spend when its mechanism first reads data,
  or reserve -> release when it fails before that. Each move is a new row;
  (job_id, action) is unique, so retries and redelivered tasks never charge
  twice, and spend and release exclude each other.
* Rejection and failures after data access never refund.
* Who sees what: every role sees the totals (spent, reserved, remaining under
  each composition, the guarantee); the history of entries, which names each
  requester, method and cost, is whole for stewards and admins, and only the
  analyst's own entries for an analyst.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.errors import Conflict
from core.models import Dataset, LedgerAction, LedgerEntry, ReleaseJob, Role, User, to_minute
from privacy.accounting import budget_status, check_can_pay
from privacy.budget import PrivacyBudget, PrivacyCost, format_value
from privacy.policy import DatasetPolicy

__all__ = [
    "committed_costs",
    "cost_to_columns",
    "dataset_budget",
    "entry_cost",
    "job_charge_state",
    "ledger_summary",
    "lock_dataset",
    "mark_spent",
    "release_reservation",
    "reserve",
]


def cost_to_columns(cost: PrivacyCost) -> dict[str, str | None]:
    d = cost.to_dict()
    return {"epsilon": d["epsilon"], "delta": d["delta"], "rho": d["rho"]}


def entry_cost(entry: LedgerEntry) -> PrivacyCost:
    if entry.epsilon == "inf":
        return PrivacyCost.non_dp()
    return PrivacyCost(
        Fraction(entry.epsilon), Fraction(entry.delta), None if entry.rho is None else Fraction(entry.rho)
    )


def dataset_budget(dataset: Dataset) -> PrivacyBudget:
    return PrivacyBudget(Fraction(dataset.epsilon_budget), Fraction(dataset.delta_budget))


def lock_dataset(session: Session, dataset_id: int) -> Dataset | None:
    """Load the dataset row with a lock held until the transaction ends."""
    return session.execute(select(Dataset).where(Dataset.id == dataset_id).with_for_update()).scalar_one_or_none()


def _job_states(session: Session, dataset_id: int) -> dict[int | None, dict[str, LedgerEntry]]:
    rows = session.execute(
        select(LedgerEntry).where(LedgerEntry.dataset_id == dataset_id).order_by(LedgerEntry.id)
    ).scalars()
    states: dict[int | None, dict[str, LedgerEntry]] = {}
    for e in rows:
        states.setdefault(e.job_id if e.job_id is not None else -e.id, {})[e.action] = e
    return states


def committed_costs(session: Session, dataset_id: int) -> tuple[list[PrivacyCost], list[PrivacyCost]]:
    """(spent, reserved) costs of a dataset, one per job."""
    spent, reserved = [], []
    for actions in _job_states(session, dataset_id).values():
        if LedgerAction.spend.value in actions:
            spent.append(entry_cost(actions[LedgerAction.spend.value]))
        elif LedgerAction.release.value in actions:
            continue
        elif LedgerAction.reserve.value in actions:
            reserved.append(entry_cost(actions[LedgerAction.reserve.value]))
    return spent, reserved


def reserve(session: Session, dataset: Dataset, job: ReleaseJob, cost: PrivacyCost, requester: User) -> str:
    """Check the budget and insert the reservation. The caller holds the dataset lock.

    Returns the accountant that admitted the charge; raises BudgetExceeded or
    PolicyViolation (nothing is written then).
    """
    spent, reserved = committed_costs(session, dataset.id)
    policy = DatasetPolicy.from_dict(dataset.policy)
    accountant = check_can_pay(dataset_budget(dataset), spent + reserved, cost, policy.privacy)
    session.add(
        LedgerEntry(
            dataset_id=dataset.id,
            job_id=job.id,
            requester_id=requester.id,
            method=job.method,
            action=LedgerAction.reserve.value,
            note=f"admitted by {accountant} composition",
            **cost_to_columns(cost),
        )
    )
    dataset.ledger_version = (dataset.ledger_version or 0) + 1
    session.flush()
    return accountant


def _append_transition(
    session: Session, job: ReleaseJob, action: LedgerAction, note: str, cost: PrivacyCost | None = None
) -> bool:
    """Insert a spend/release row for a reserved job; False if already done (idempotent)."""
    entries = {e.action: e for e in session.execute(select(LedgerEntry).where(LedgerEntry.job_id == job.id)).scalars()}
    if action.value in entries:
        return False
    reserve_row = entries.get(LedgerAction.reserve.value)
    if reserve_row is None:
        return False  # nothing was reserved (a zero-cost job)
    other = LedgerAction.release if action is LedgerAction.spend else LedgerAction.spend
    if other.value in entries:
        if action is LedgerAction.release:
            return False  # already spent: a failure after data access keeps the charge
        raise Conflict(f"job {job.id}: its reservation was released; it cannot be spent")
    charged = cost or entry_cost(reserve_row)
    reserved_cost = entry_cost(reserve_row)
    if action is LedgerAction.spend and cost is not None and not _fits_within(cost, reserved_cost):
        raise Conflict(
            f"job {job.id}: actual cost {cost.describe()} exceeds the reservation {reserved_cost.describe()}"
        )
    # spend records the reservation itself unless the mechanism reports less:
    # the reservation is what was admitted, and the admitted figure is what is charged.
    row = LedgerEntry(
        dataset_id=job.dataset_id,
        job_id=job.id,
        requester_id=reserve_row.requester_id,
        method=job.method,
        action=action.value,
        note=note,
        **cost_to_columns(reserved_cost if action is LedgerAction.spend else charged),
    )
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        return False  # a concurrent transition won; same outcome
    return True


def _fits_within(actual: PrivacyCost, reserved: PrivacyCost) -> bool:
    if not reserved.is_dp:
        return True
    if not actual.is_dp:
        return False
    return actual.epsilon <= reserved.epsilon and actual.delta <= reserved.delta


def mark_spent(session: Session, job: ReleaseJob, actual: PrivacyCost | None = None) -> bool:
    """The mechanism is about to read the data: the reservation becomes spent."""
    return _append_transition(session, job, LedgerAction.spend, "mechanism read the data", actual)


def release_reservation(session: Session, job: ReleaseJob, reason: str) -> bool:
    """Give back a reservation whose job never read the data. No-op once spent."""
    return _append_transition(session, job, LedgerAction.release, reason)


def job_charge_state(session: Session, job_id: int) -> str | None:
    actions = set(session.execute(select(LedgerEntry.action).where(LedgerEntry.job_id == job_id)).scalars())
    for state in (LedgerAction.spend.value, LedgerAction.release.value, LedgerAction.reserve.value):
        if state in actions:
            return {"spend": "spent", "release": "released", "reserve": "reserved"}[state]
    return None


HISTORY_ALL = "all"
HISTORY_OWN = "own"


@dataclass(frozen=True)
class LedgerSummary:
    """The totals of a dataset's ledger and the part of its history the viewer may see.

    `history_scope` is "all" (every entry) or "own" (the viewer's own entries only).
    """

    dataset_id: int
    dataset_name: str
    policy: str
    status: Any  # privacy.accounting.BudgetStatus
    history: list[dict[str, Any]]
    history_scope: str = HISTORY_ALL

    def to_dict(self) -> dict[str, Any]:
        d = self.status.to_dict()
        return {
            "dataset_id": self.dataset_id,
            "dataset": self.dataset_name,
            "policy": self.policy,
            **d,
            "history": self.history,
            "history_scope": self.history_scope,
        }

    def describe(self) -> str:
        s = self.status
        lines = [
            f"Dataset {self.dataset_name} (#{self.dataset_id}), policy {self.policy}",
            f"  budget     epsilon {format_value(s.budget.epsilon)}, delta {format_value(s.budget.delta)}",
            f"  spent      epsilon {format_value(s.spent.epsilon)}, delta {format_value(s.spent.delta)}",
            f"  reserved   epsilon {format_value(s.reserved.epsilon)}, delta {format_value(s.reserved.delta)}",
            f"  remaining  basic composition: epsilon {format_value(s.remaining_epsilon)}, "
            f"delta {format_value(s.remaining_delta)}",
        ]
        if s.zcdp_remaining_epsilon is not None:
            lines.append(
                f"             zCDP composition:  epsilon {format_value(s.zcdp_remaining_epsilon)} "
                f"(committed rho {format_value(s.zcdp_rho_committed)} = epsilon "
                f"{format_value(s.zcdp_epsilon_committed)} at delta {format_value(s.budget.delta)})"
            )
        else:
            lines.append("             zCDP composition:  not applicable (a charge is not zCDP)")
        lines.append("  guarantee  " + s.guarantee())
        lines.append(
            "  history"
            + (
                "  (your own entries only; the totals above count every release)"
                if self.history_scope == HISTORY_OWN
                else ""
            )
        )
        for h in self.history:
            lines.append(
                f"    {h['created_at']}  job {h['job_id']}  {h['action']:<8} {h['method']:<16} "
                f"eps {h['epsilon']:<10} delta {h['delta']:<10} by {h['requester']}"
            )
        return "\n".join(lines)


def history_scope(viewer: User | None) -> str:
    """ "all" for stewards, admins and internal callers (no viewer); "own" for anyone else."""
    if viewer is None or viewer.role in (Role.steward.value, Role.admin.value):
        return HISTORY_ALL
    return HISTORY_OWN


def ledger_summary(session: Session, dataset: Dataset, viewer: User | None = None) -> LedgerSummary:
    """Totals and history of a dataset's ledger as `viewer` may see them.

    Without a viewer (workers, bundle statements) the history is whole; callers
    that answer a user pass that user.
    """
    spent, reserved = committed_costs(session, dataset.id)
    status = budget_status(dataset_budget(dataset), spent, reserved)
    scope = history_scope(viewer)
    q = select(LedgerEntry).where(LedgerEntry.dataset_id == dataset.id).order_by(LedgerEntry.id)
    if scope == HISTORY_OWN:
        assert viewer is not None
        q = q.where(LedgerEntry.requester_id == viewer.id)
    entries = list(session.execute(q).scalars())
    ids = {e.requester_id for e in entries}
    users = {u.id: u.username for u in session.execute(select(User).where(User.id.in_(ids or {-1}))).scalars()}
    history = []
    for e in entries:
        cost = entry_cost(e)
        history.append(
            {
                "id": e.id,
                "job_id": e.job_id,
                "action": e.action,
                "method": e.method,
                "epsilon": format_value(cost.epsilon),
                "delta": format_value(cost.delta),
                "rho": None if cost.rho is None else format_value(cost.rho),
                "cost": cost.to_dict(),
                "requester": users.get(e.requester_id, str(e.requester_id)),
                "note": e.note,
                # an analyst's own entries to the minute: the spend is written as the data is read
                "created_at": (
                    e.created_at.isoformat(timespec="seconds") if scope == HISTORY_ALL else to_minute(e.created_at)
                ),
            }
        )
    return LedgerSummary(
        dataset.id, dataset.name, DatasetPolicy.from_dict(dataset.policy).privacy, status, history, scope
    )
