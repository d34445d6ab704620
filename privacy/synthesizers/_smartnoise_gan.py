"""The GANs of privacy/synthesizers/smartnoise.py: DPCTGAN and PATECTGAN, and their accounting.

The unconditional sampler that replaces smartnoise's conditional vectors, the
opacus RDP and PATE moments accounting that fix the number of epochs or
iterations before training, the seeding of the global generators, and
`_DPCTGANMethod` and `_PATECTGANMethod`: what each GAN adds to the GAN base of
smartnoise.py (options, preflight, fit), where the registered classes are
assembled. They rely on that base for `options`, `_count_rows`, `_gan_batch`,
`seed` and `derived_seed`.
"""

from __future__ import annotations

import contextlib
import math
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from privacy._random import seed_global_numpy
from privacy.bounds import BOUNDS_OPTION_HELP, MethodBudget
from privacy.budget import PrivacyCost
from privacy.errors import InvalidPrivacyValue, MethodOptionError
from privacy.schema import PublicSchema
from privacy.synthesizers._progress import Milestones
from privacy.synthesizers._smartnoise_codecs import _GanCodec
from privacy.synthesizers._smartnoise_support import _GAN_LOCK, _quiet
from privacy.synthesizers.base import OptionSpec, ProgressCallback

if TYPE_CHECKING:
    # type-checked as subclasses of the base smartnoise.py puts them on; plain mixins at run time, so
    # that this module does not import smartnoise.py
    from privacy.synthesizers.smartnoise import _GanBase as _OnGanBase
else:
    _OnGanBase = object

# ----------------------------------------------------------------------------------
# GANs
# ----------------------------------------------------------------------------------


class _UnconditionalSampler:
    """Stand-in for smartnoise's DataSampler: no conditional vector, rows drawn uniformly."""

    discrete_column_category_prob = None

    def __init__(self, data: np.ndarray, transformers: Any = None, **_: Any) -> None:
        self._data = data

    def sample_condvec(self, batch: int) -> None:
        return None

    def sample_original_condvec(self, batch: int) -> None:
        return None

    def sample_data(self, n: int, col: Any, opt: Any) -> np.ndarray:
        return self._data[np.random.randint(len(self._data), size=n)]

    def dim_cond_vec(self) -> int:
        return 0


_DPCTGAN_ALPHAS = [1 + x / 10.0 for x in range(1, 100)] + list(range(12, 64))


def _opacus_epsilon(sample_rate: float, sigma: float, steps: int, delta: float) -> float:
    from opacus import privacy_analysis

    if steps == 0:
        return 0.0
    rdp = privacy_analysis.compute_rdp(sample_rate, sigma, steps, _DPCTGAN_ALPHAS)
    eps, _alpha = privacy_analysis.get_privacy_spent(_DPCTGAN_ALPHAS, rdp, delta)
    return float(eps)


def dpctgan_sample_rate(batch: int, rows_lower: int) -> float:
    """The sampling rate DP-SGD is accounted at: batch / (lower bound - 1), at most 1.

    With the lower bound below the true count n, this is above batch / n and
    batch / (n - 1), the rates of the table and of its neighbour with one row
    fewer: over-stating the rate is the safe direction.
    """
    return min(1.0, batch / max(rows_lower - 1, 1))


def dpctgan_max_epochs(
    sample_rate: float, steps_per_epoch: int, sigma: float, epsilon: float, delta: float, limit: int
) -> int:
    """The most epochs (<= limit) whose opacus RDP epsilon stays within `epsilon`.

    Each DPCTGAN step makes two private optimizer steps (fake and real batches).
    """
    lo, hi = 0, limit
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if _opacus_epsilon(sample_rate, sigma, 2 * steps_per_epoch * mid, delta) <= epsilon:
            lo = mid
        else:
            hi = mid - 1
    return lo


#: the batch sizes DPCTGAN chooses from when the analyst sets none, and the most epochs it trains when the
#: analyst sets none (the budget and the time target may allow fewer)
DPCTGAN_BATCHES = (128, 256, 512, 1024)
DPCTGAN_EPOCHS = 10
#: the defaults of the options `minutes` (the time target) and `sigma` (DP-SGD's noise multiplier)
DPCTGAN_MINUTES = 5.0
DPCTGAN_SIGMA = 5.0


def even_batch(batch: int, rows: int) -> int:
    """`batch` capped at half of `rows`, even, at least 2."""
    capped = min(int(batch), max(2, (rows // 2) // 2 * 2))
    return max(2, capped - capped % 2)


def dpctgan_plan(
    rows: int,
    *,
    batch_size: int | None,
    epochs: int | None,
    minutes: float,
    sigma: float,
    epsilon: float | None,
    delta: float | None,
) -> tuple[int, int]:
    """DPCTGAN's (batch size, epochs) on a table of `rows` rows, from public facts and options only.

    `rows` is a public or DP figure (the fit passes its noisy count's lower bound, the estimate the
    declared row count), never the table's own count. The epochs are the most whose opacus RDP
    epsilon at `sigma` stays within (epsilon, delta), at most `epochs` (`DPCTGAN_EPOCHS` when unset);
    epsilon None (an estimate without a budget) leaves that cap alone. When the analyst set no epochs,
    the epochs are also cut to those that the time model (privacy/estimate.py) fits in `minutes` CPU
    minutes, at least one. When the analyst set no batch size, it is the first of `DPCTGAN_BATCHES`
    whose training fits the time target uncut, or else the one that trains the most epochs in it
    (the larger among equals), or with the analyst's epochs the fastest (a larger batch costs less
    per row, and DP-SGD's noise on the mean gradient shrinks with it). The batch size and epochs feed
    opacus's accounting as before, so the epsilon spent never exceeds the budget whatever is chosen.
    The choice follows the time model, never a clock. Epochs 0: the budget cannot pay for one.
    """
    from privacy.synthesizers._dpctgan_time import dpctgan_epoch_seconds, dpctgan_fixed_seconds

    cap = int(epochs) if epochs else DPCTGAN_EPOCHS
    limit = minutes * 60
    best: tuple[int, int] | None = None
    best_key: tuple[float, float] = (-math.inf, -math.inf)
    for candidate in [batch_size] if batch_size else DPCTGAN_BATCHES:
        batch = even_batch(int(candidate), rows)
        steps = max(rows // batch, 1)
        allowed = cap
        if epsilon is not None and delta:
            allowed = dpctgan_max_epochs(dpctgan_sample_rate(batch, rows), steps, sigma, epsilon, delta, cap)
        if allowed < 1:
            if best is None:
                best = (batch, 0)
            continue
        per_epoch = dpctgan_epoch_seconds(rows, batch)
        chosen = allowed if epochs else max(1, min(allowed, int((limit - dpctgan_fixed_seconds()) // per_epoch)))
        seconds = dpctgan_fixed_seconds() + chosen * per_epoch
        if chosen == allowed and seconds <= limit:
            return batch, chosen
        # nothing fits yet: unset epochs, the most epochs (the faster batch among equals); set epochs, the fastest
        key = (float(chosen), float(batch)) if not epochs else (-seconds, 0.0)
        if best is None or best[1] == 0 or key > best_key:
            best, best_key = (batch, chosen), key
    assert best is not None
    return best


def pate_epsilon(queries: int, gamma: float, delta: float, max_order: int = 100) -> float:
    """Epsilon of `queries` noisy PATE votes under the data-independent moments bound."""
    if queries == 0:
        return 0.0
    best = math.inf
    log_inv_delta = math.log(1.0 / delta)
    for order in range(1, max_order + 1):
        alpha = queries * 2.0 * gamma**2 * order * (order + 1)
        best = min(best, (alpha + log_inv_delta) / order)
    return best


@contextlib.contextmanager
def _seeded(seed: int | None) -> Any:
    """Seed numpy's and torch's global generators for the block, then restore them."""
    import torch

    np_state = np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            seed_global_numpy(seed)  # every bit of the seed, not its low 32
            torch.manual_seed(seed)
        else:
            # torch starts every process from the same fixed seed: draw a fresh one
            torch.seed()
        try:
            yield
        finally:
            np.random.set_state(np_state)


@contextlib.contextmanager
def _no_reseed(module: Any) -> Any:
    """smartnoise's discriminators call torch.manual_seed(0) when built, which would make every later
    draw (the DP-SGD noise included) the same in every run. While the block runs, `module` sees a torch
    whose manual_seed does nothing, so the caller's stream (seeded or fresh) continues."""
    import types

    import torch

    class _Cuda(types.ModuleType):
        def __getattr__(self, name: str) -> Any:
            return getattr(torch.cuda, name)

        @staticmethod
        def manual_seed(seed: int) -> None:
            return None

    class _Torch(types.ModuleType):
        cuda = _Cuda("torch.cuda")

        def __getattr__(self, name: str) -> Any:
            return getattr(torch, name)

        @staticmethod
        def manual_seed(seed: int) -> None:
            return None

    original = module.torch
    module.torch = _Torch("torch")
    try:
        yield
    finally:
        module.torch = original


_GAN_OPTIONS: dict[str, OptionSpec] = {
    "epochs": (int, 10, "most training epochs (fewer if the budget runs out first)", (1, 5000)),
    "batch_size": (int, 128, "batch size (even; capped at half the rows)", (2, 10_000)),
    "embedding_dim": (int, 64, "size of the generator's noise input", (1, 1024)),
    "generator_dim": (int, 128, "width of the generator's two residual layers", (1, 1024)),
    "discriminator_dim": (int, 128, "width of the discriminator's two layers", (1, 1024)),
    "bounds_epsilon": (float, 0.0, BOUNDS_OPTION_HELP),
}


class _DPCTGANMethod(_OnGanBase):
    """DPCTGAN's options and fit; `SmartnoiseDPCTGANSynthesizer` puts them on the GAN base."""

    name = "dpctgan"
    reproducible = False  # opacus seeds its noise (and torch's global generator) from os.urandom
    description = (
        "DP-CTGAN (a GAN whose discriminator is trained with DP-SGD, opacus) through smartnoise-synth; "
        "(epsilon, delta)-DP under add/remove of one row: 10% of epsilon buys a noisy row count whose lower "
        "bound (exceeded with probability at most delta/2, part of delta) sets the batch size, the steps of "
        "an epoch and the sampling rate of opacus's RDP accounting (batches are drawn uniformly with "
        "replacement, the usual approximation of Poisson sampling). Needs many rows."
    )
    option_spec = {
        **_GAN_OPTIONS,
        "epochs": (
            int,
            None,
            f"most training epochs (fewer if the budget runs out first); unset: up to {DPCTGAN_EPOCHS}, as many "
            "as `minutes` allows",
            (1, 5000),
        ),
        "batch_size": (
            int,
            None,
            "batch size (even; capped at half the rows); unset: 128, or up to 1024 when that trains more epochs "
            "within `minutes`",
            (2, 10_000),
        ),
        "minutes": (
            float,
            DPCTGAN_MINUTES,
            "CPU minutes of training (the time estimate's model) the unset epochs and batch size are chosen for",
            (0.5, 1440),
        ),
        "sigma": (float, DPCTGAN_SIGMA, "noise multiplier of DP-SGD"),
    }
    ROW_COUNT_SHARE = Fraction(1, 10)
    ROW_COUNT_FAILURE_SHARE = Fraction(1, 2)
    row_count_use = (
        "batch size, steps per epoch and the DP-SGD sampling rate follow a lower bound of the noisy count; "
        "the chance that the bound exceeds the true count is part of delta"
    )

    def _fit_method(
        self, table: pd.DataFrame, schema: PublicSchema, budget: MethodBudget, progress: ProgressCallback
    ) -> None:
        import snsynth.pytorch.nn.dpctgan as dpctgan_module

        count, rest = self._count_rows(table, budget)
        rows = count.lower  # below the true count but with probability <= failure
        # an option sent as null takes its default
        sigma = float(DPCTGAN_SIGMA if self.options["sigma"] is None else self.options["sigma"])
        eps, delta = float(rest.epsilon), float(rest.delta)
        batch, epochs = dpctgan_plan(
            rows,
            batch_size=self.options["batch_size"],
            epochs=self.options["epochs"],
            minutes=float(DPCTGAN_MINUTES if self.options["minutes"] is None else self.options["minutes"]),
            sigma=sigma,
            epsilon=eps,
            delta=delta,
        )
        sample_rate = dpctgan_sample_rate(batch, rows)
        steps_per_epoch = max(rows // batch, 1)
        if epochs < 1:
            raise InvalidPrivacyValue(
                f"dpctgan cannot train one epoch within epsilon {float(budget.epsilon):g} at sigma {sigma:g}; "
                "ask for more epsilon, raise the option sigma, or lower batch_size",
                field="epsilon",
            )
        self.epochs_run = epochs
        self.training_plan = {
            "batch_size": batch,
            "sample_rate": sample_rate,
            "steps_per_epoch": steps_per_epoch,
            "epochs": epochs,
        }
        self._codec = _GanCodec(schema)
        transformer = self._codec.table_transformer()
        real = np.array(
            [
                [float(x) if x is not None else 0.0 for x in row]
                for row in transformer.transform(self._codec.encode(table))
            ],
            dtype=float,
        )

        class _RealRows(_UnconditionalSampler):
            """The batches come from the real rows, whatever table smartnoise's loop was given."""

            def __init__(self, data: np.ndarray, transformers: Any = None, **_: Any) -> None:
                super().__init__(real)

        model = dpctgan_module.DPCTGAN(
            embedding_dim=self.options["embedding_dim"],
            generator_dim=(self.options["generator_dim"],) * 2,
            discriminator_dim=(self.options["discriminator_dim"],) * 2,
            batch_size=batch,
            epochs=epochs,
            sigma=sigma,
            epsilon=eps,
            delta=delta,
            verbose=False,
            cuda=False,
            loss="cross_entropy",
        )
        progress(0.05, "training the GAN")
        # smartnoise's loop takes its steps per epoch and opacus's sample size from the length of the table
        # it is given: a placeholder of `rows` rows built from the schema, never the exact count
        placeholder = self._codec.placeholder(max(rows, batch))
        original_sampler = dpctgan_module.DataSampler
        with _GAN_LOCK, _seeded(self.seed), _quiet(), _no_reseed(dpctgan_module):
            dpctgan_module.DataSampler = _RealRows
            try:
                model.fit(placeholder, transformer=transformer, preprocessor_eps=0.0)
            finally:
                dpctgan_module.DataSampler = original_sampler
        spent = _opacus_epsilon(sample_rate, sigma, 2 * steps_per_epoch * len(model.loss_d_list), delta)
        if len(model.loss_d_list) > epochs or spent > eps:  # pragma: no cover - guards the accounting above
            raise RuntimeError(f"dpctgan overran its budget: {spent} > {eps}")
        self._model = model

    def _generate(self, n: int) -> Any:
        return self._model.generate(n)


class _PATECTGANMethod(_OnGanBase):
    """PATECTGAN's options, preflight and training loop; `SmartnoisePATECTGANSynthesizer` puts them on
    the GAN base."""

    name = "patectgan"
    description = (
        "PATE-CTGAN (teacher discriminators on disjoint parts of the data, a student trained on their noisy "
        "votes) on smartnoise-synth's networks; (epsilon, delta)-DP under add/remove of one row by the "
        "data-independent moments bound, with 5% of epsilon spent on a noisy row count that sets the number "
        "of teachers and the batch size. Weak at small epsilon."
    )
    ROW_COUNT_SHARE = Fraction(1, 20)
    row_count_use = "the number of teachers and the batch size follow the noisy count"
    option_spec = {
        **_GAN_OPTIONS,
        "batch_size": (int, 64, "generated samples per student step (each is one PATE query)", (2, 10_000)),
        "epochs": (int, 200, "most generator iterations (fewer if the budget runs out first)", (1, 5000)),
        "noise_multiplier": (float, 1e-3, "gamma: the vote noise is Laplace(1/gamma); smaller is more private"),
        "teacher_iters": (int, 5, "teacher discriminator steps per iteration", (1, 100)),
        "student_iters": (int, 5, "student steps (PATE queries x batch) per iteration", (1, 100)),
        "sample_per_teacher": (int, 1000, "rows per teacher (the number of teachers follows)", (10, 1_000_000)),
    }

    def preflight(self, schema: PublicSchema, requested: PrivacyCost) -> None:
        """What the request alone decides, before any data is read: a positive gamma, and one iteration.

        The smallest batch is 2 queries per student step, and the rest of the budget is at most epsilon
        less the row count's share (and `bounds_epsilon` when bounds are learned) at the whole delta: if
        even that cannot pay for one iteration, no table can, and the fit would fail after reading it.
        """
        super().preflight(schema, requested)
        gamma = self.options["noise_multiplier"]
        if gamma is None or not (math.isfinite(gamma) and gamma > 0):
            raise MethodOptionError("noise_multiplier of patectgan must be a positive number", field="options")
        if not requested.is_dp or requested.delta <= 0:
            return
        eps = float(requested.epsilon)
        if schema.open_columns:
            eps -= float(self.options["bounds_epsilon"] or 0)
        eps *= float(1 - self.ROW_COUNT_SHARE)
        if eps <= 0 or pate_epsilon(int(self.options["student_iters"]) * 2, float(gamma), float(requested.delta)) > eps:
            raise InvalidPrivacyValue(
                f"patectgan cannot make one iteration within epsilon {float(requested.epsilon):g} "
                f"(noise_multiplier {float(gamma):g}, student_iters {self.options['student_iters']}) on any table; "
                "ask for more epsilon, or lower noise_multiplier or student_iters",
                field="epsilon",
            )

    def _fit_method(
        self, table: pd.DataFrame, schema: PublicSchema, budget: MethodBudget, progress: ProgressCallback
    ) -> None:
        import snsynth.pytorch.nn.patectgan as patectgan_module
        import torch
        from snsynth.pytorch.nn.patectgan import PATECTGAN, Discriminator, Generator
        from snsynth.pytorch.nn.privacy_utils import pate, weights_init

        n = len(table)
        count, rest = self._count_rows(table, budget)
        batch = self._gan_batch(count.value)
        gamma = float(self.options["noise_multiplier"])
        student_iters = int(self.options["student_iters"])
        teacher_iters = int(self.options["teacher_iters"])
        if gamma <= 0 or student_iters < 1 or teacher_iters < 1:
            raise MethodOptionError(
                "noise_multiplier, student_iters and teacher_iters must be positive", field="options"
            )
        eps, delta = float(rest.epsilon), float(rest.delta)
        per_iteration = student_iters * batch
        iterations = 0
        while (
            iterations < int(self.options["epochs"])
            and pate_epsilon(per_iteration * (iterations + 1), gamma, delta) <= eps
        ):
            iterations += 1
        if iterations < 1:
            raise InvalidPrivacyValue(
                f"patectgan cannot make one iteration within epsilon {float(budget.epsilon):g} (gamma {gamma:g}); "
                "ask for more epsilon, or lower noise_multiplier, batch_size or student_iters",
                field="epsilon",
            )
        self.iterations_run = iterations
        self._codec = _GanCodec(schema)
        prepared = self._codec.encode(table)
        model = PATECTGAN(
            embedding_dim=self.options["embedding_dim"],
            generator_dim=(self.options["generator_dim"],) * 2,
            discriminator_dim=(self.options["discriminator_dim"],) * 2,
            batch_size=batch,
            epsilon=eps,
            delta=delta,
            verbose=False,
            cuda=False,
            pac=1,
            loss="cross_entropy",
            noise_multiplier=gamma,
        )
        transformer = self._codec.table_transformer()
        with _GAN_LOCK, _seeded(self.seed), _quiet():
            model._transformer = transformer
            train = transformer.transform(prepared)
            data = np.array([[float(x) if x is not None else 0.0 for x in row] for row in train], dtype=np.float32)
            n_teachers = max(2, count.value // max(1, int(self.options["sample_per_teacher"])))
            self.training_plan = {"batch_size": batch, "teachers": n_teachers, "iterations": iterations}
            assignment = np.random.randint(n_teachers, size=n)
            parts = [data[assignment == t] for t in range(n_teachers)]
            data_dim = transformer.output_width
            emb = self.options["embedding_dim"]
            model._generator = Generator(emb, model._generator_dim, data_dim)
            with _no_reseed(patectgan_module):
                teachers = [Discriminator(data_dim, model._discriminator_dim, "cross_entropy", 1) for _ in parts]
                student = Discriminator(data_dim, model._discriminator_dim, "cross_entropy", 1)
            for disc in [*teachers, student]:
                disc.apply(weights_init)
            opt_g = torch.optim.Adam(model._generator.parameters(), lr=2e-4, betas=(0.5, 0.9), weight_decay=1e-6)
            opt_t = [torch.optim.Adam(t.parameters(), lr=2e-4, betas=(0.5, 0.9), weight_decay=1e-6) for t in teachers]
            opt_s = torch.optim.Adam(student.parameters(), lr=2e-4, betas=(0.5, 0.9))
            bce = torch.nn.BCELoss()
            ones = torch.ones(batch)
            zeros = torch.zeros(batch)

            def generated() -> torch.Tensor:
                z = torch.randn(batch, emb)
                return model._apply_activate(model._generator(z))

            milestones = Milestones(progress, "training the GAN")
            for it in range(iterations):
                for _ in range(teacher_iters):
                    for t, part in enumerate(parts):
                        if len(part) == 0:
                            continue
                        real = torch.from_numpy(part[np.random.randint(len(part), size=batch)])
                        fake = generated().detach()
                        opt_t[t].zero_grad()
                        out = torch.cat([teachers[t](fake), teachers[t](real)]).squeeze()
                        bce(out, torch.cat([zeros, ones])).backward()
                        opt_t[t].step()
                for _ in range(student_iters):
                    fake = generated().detach()
                    labels, _votes = pate(fake, teachers, gamma)
                    opt_s.zero_grad()
                    bce(student(fake).squeeze(), labels.float().squeeze()).backward()
                    opt_s.step()
                opt_g.zero_grad()
                bce(student(generated()).squeeze(), ones).backward()
                opt_g.step()
                milestones((it + 1) / iterations)
            milestones.finish()
            model.cond_generator = _UnconditionalSampler(data[:0])
        spent = pate_epsilon(per_iteration * iterations, gamma, delta)
        if spent > eps:  # pragma: no cover - guards the loop above
            raise RuntimeError(f"patectgan overran its budget: {spent} > {eps}")
        self._model = model

    def _generate(self, n: int) -> Any:
        return self._model.generate(n)
