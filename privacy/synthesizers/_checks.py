"""Request checks shared by synthesizers: run on the schema and request alone."""

from __future__ import annotations

from typing import Protocol

from privacy.budget import PrivacyCost
from privacy.errors import InvalidPrivacyValue, SchemaError
from privacy.schema import PublicSchema


class Method(Protocol):
    """What the checks read of a method (a `privacy.synthesizers.base.Synthesizer` has these).

    A protocol rather than the class itself, so that base.py can import this
    module and this module need not import base.py.
    """

    @property
    def name(self) -> str: ...

    @property
    def guarantee(self) -> str: ...

    @property
    def needs_delta(self) -> bool: ...


def check_request(synth: Method, schema: PublicSchema, requested: PrivacyCost) -> None:
    """Refuse requests whose cost does not fit the method's guarantee."""
    if synth.guarantee == "dp":
        if not requested.is_dp:
            raise InvalidPrivacyValue(f"{synth.name} is a DP method: give a finite epsilon", field="epsilon")
        if requested.epsilon <= 0:
            raise InvalidPrivacyValue(f"{synth.name} needs epsilon > 0", field="epsilon")
        if synth.needs_delta and requested.delta <= 0:
            raise InvalidPrivacyValue(
                f"{synth.name} needs a delta > 0 (for example 1e-9; well below 1/rows)", field="delta"
            )
    check_declared_domains(synth.name, schema)


def check_declared_domains(method: str, schema: PublicSchema) -> None:
    """Every modelled categorical needs declared values, every number declared bounds.

    Methods that can pay to learn open bounds override this.
    """
    open_cols = schema.open_columns
    if open_cols:
        details = []
        for name in open_cols:
            spec = schema.columns[name]
            details.append(f"'{name}' ({'values' if spec.kind == 'categorical' else 'min and max'})")
        raise SchemaError(
            f"{method} needs every bound and category domain declared in the public schema; "
            f"declare {', '.join(details)}, or drop the column(s)",
            field="schema",
        )
