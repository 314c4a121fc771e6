"""The PDE solvers against exact answers: manufactured solutions and finite-difference residuals."""

import numpy as np
import pytest

from scifm import pdes
from scifm.pdes import _spectral

RNG = np.random.default_rng(1234)


def _random_coefficients(system: str, rng) -> np.ndarray:
    e, theta = rng.uniform(1, 20), rng.uniform(0, 2 * np.pi)
    k = pdes._base.rotated_diffusion(np.array([e]), np.array([theta]), 0.01)[0]
    if system == "poisson":
        return np.r_[k, 0, 0, 0]
    if system == "advdiff":
        return np.r_[k, rng.normal(size=2), 0]
    while True:  # round-off tests keep omega >= 0.1 away from resonance (condition <= ~100)
        omega = rng.uniform(1, 10)
        shells = 0.01 * (2 * np.pi) ** 2 * np.arange(60)
        if np.abs(shells - omega).min() > 0.1:
            return np.r_[0.01, 0.01, 0, 0, 0, omega]


def _manufactured(coefficients, resolution, rng, modes=6):
    """A random trigonometric polynomial u and L u derived by hand (analytic derivatives)."""
    x = np.arange(resolution) / resolution
    X, Y = np.meshgrid(x, x, indexing="ij")
    k11, k22, k12, vx, vy, omega = coefficients
    u = np.zeros_like(X)
    f = np.zeros_like(X)
    for _ in range(modes):
        m, n = rng.integers(-resolution // 4, resolution // 4 + 1, size=2)
        if m == 0 and n == 0:
            continue
        a, b = rng.normal(size=2)
        kx, ky = 2 * np.pi * m, 2 * np.pi * n
        phase = kx * X + ky * Y
        c, s = np.cos(phase), np.sin(phase)
        term = a * c + b * s
        dterm = -a * s + b * c  # derivative of term w.r.t. phase
        u += term
        # u_xx = -kx^2 term, u_xy = -kx ky term, u_x = kx dterm
        f += (k11 * kx**2 + 2 * k12 * kx * ky + k22 * ky**2) * term
        f += (vx * kx + vy * ky) * dterm - omega * term
    if omega != 0:  # Helmholtz has no null space: a constant mode is solvable too
        u += 0.3
        f += -omega * 0.3
    return u, f


@pytest.mark.parametrize("system", ["poisson", "advdiff", "helmholtz"])
@pytest.mark.parametrize("resolution", [16, 64])
def test_manufactured_solution_round_off(system, resolution):
    for _ in range(5):
        c = _random_coefficients(system, RNG)
        u, f = _manufactured(c, resolution, RNG)
        f_proj, u_num = pdes.solve(f[None], c[None])
        assert np.abs(f_proj[0] - f).max() < 1e-12 * np.abs(f).max()  # f already in the range
        assert np.abs(u_num[0] - u).max() < 1e-12 * np.abs(u).max()


def test_solve_projects_out_the_null_space():
    """A source with a mean: Poisson removes it and returns the zero-mean solution."""
    c = _random_coefficients("poisson", RNG)
    u, f = _manufactured(c, 32, RNG)
    f_proj, u_num = pdes.solve((f + 0.7)[None], c[None])
    np.testing.assert_allclose(f_proj[0], f, atol=1e-12)
    np.testing.assert_allclose(u_num[0], u, atol=1e-12)
    assert abs(u_num.mean()) < 1e-14


def test_exactly_resonant_helmholtz_modes_are_projected_out():
    """omega on the shell m^2+n^2 = 5: those modes leave f, u has none of them, the rest is exact."""
    kappa = 0.01
    omega = kappa * (2 * np.pi) ** 2 * 5
    c = np.array([kappa, kappa, 0, 0, 0, omega])
    resolution = 32
    x = np.arange(resolution) / resolution
    X, Y = np.meshgrid(x, x, indexing="ij")
    u = np.cos(2 * np.pi * (3 * X + Y))  # not resonant: 3^2 + 1^2 = 10
    f = (kappa * (2 * np.pi) ** 2 * 10 - omega) * u
    resonant = np.sin(2 * np.pi * (X + 2 * Y))  # 1^2 + 2^2 = 5
    f_proj, u_num = pdes.solve((f + resonant)[None], c[None])
    np.testing.assert_allclose(f_proj[0], f, atol=1e-12)
    np.testing.assert_allclose(u_num[0], u, atol=1e-12)
    assert pdes.resonances(omega, kappa) == [5]


def _fd_residual(f, u, c):
    """Residual of L u = f with second-order centred finite differences on the periodic grid."""
    h = 1.0 / u.shape[-1]
    k11, k22, k12, vx, vy, omega = c

    def sh(a, i, j):
        return np.roll(a, (-i, -j), axis=(0, 1))

    uxx = (sh(u, 1, 0) - 2 * u + sh(u, -1, 0)) / h**2
    uyy = (sh(u, 0, 1) - 2 * u + sh(u, 0, -1)) / h**2
    uxy = (sh(u, 1, 1) - sh(u, 1, -1) - sh(u, -1, 1) + sh(u, -1, -1)) / (4 * h**2)
    ux = (sh(u, 1, 0) - sh(u, -1, 0)) / (2 * h)
    uy = (sh(u, 0, 1) - sh(u, 0, -1)) / (2 * h)
    lu = -(k11 * uxx + 2 * k12 * uxy + k22 * uyy) + vx * ux + vy * uy - omega * u
    return np.sqrt(np.mean((lu - f) ** 2)) / np.sqrt(np.mean(f**2))


@pytest.mark.parametrize(
    "system",
    [
        pdes.Poisson(eig_range=(1, 20)),
        pdes.AdvectionDiffusion(ratio_range=(0.5, 2)),
        pdes.Helmholtz(),
    ],
    ids=lambda s: s.name,
)
def test_generated_samples_satisfy_the_pde_at_second_order(system, tmp_path):
    """Stored (float32) samples, checked from the file alone: FD residual falls ~4x per refinement.

    The same seed at another resolution gives the same continuous problems (per-sample random
    streams), so the residual of one sample can be followed under refinement.
    """
    from scifm import data

    residuals = {}
    for resolution in (64, 128, 256):
        path = data.generate(system, 3, resolution, 7, tmp_path / f"{resolution}.h5")
        with data.open(path) as ds:
            f, u, c = ds.inputs[:], ds.outputs[:], ds.coefficients
            residuals[resolution] = [_fd_residual(f[i, 0], u[i, 0], c[i]) for i in range(3)]
    r64, r128, r256 = (np.array(residuals[r]) for r in (64, 128, 256))
    order_1 = np.log2(r64 / r128)
    order_2 = np.log2(r128 / r256)
    assert np.all(order_2 > 1.8) and np.all(order_2 < 2.2), (residuals, order_2)
    assert np.all(order_1 > 1.6), (residuals, order_1)
    assert np.all(r256 < 2e-2)


def test_advdiff_hits_the_ratio_exactly():
    system = pdes.AdvectionDiffusion(ratio_range=(0.01, 20.0))
    psi_target = []
    for i in range(16):  # replay each sample's stream: source amplitudes, then physics
        rng = np.random.default_rng(np.random.SeedSequence(3, spawn_key=(i,)))
        system.source.draw(rng, i)
        psi_target.append(system.draw(rng)[3])
    s = system.sample(np.arange(16), 3, 64)
    # recompute ||v.grad u|| / ||div(K grad u)|| independently with full complex FFTs
    resolution = 64
    k = 2 * np.pi * np.fft.fftfreq(resolution, 1 / resolution)
    kx, ky = k[:, None], k[None, :]
    for i in range(16):
        k11, k22, k12, vx, vy, _ = s.coefficients[i]
        uh = np.fft.fft2(s.outputs[i, 0])
        adv = np.fft.ifft2(1j * (vx * kx + vy * ky) * uh).real
        dif = np.fft.ifft2(-(k11 * kx**2 + 2 * k12 * kx * ky + k22 * ky**2) * uh).real
        psi = np.linalg.norm(adv) / np.linalg.norm(dif)
        assert psi == pytest.approx(psi_target[i], rel=1e-10)
        assert s.parameters[i, 3] == pytest.approx(psi, rel=1e-10)


def test_advdiff_zero_ratio_is_pure_diffusion():
    s = pdes.AdvectionDiffusion(ratio_range=(0.0, 0.0)).sample(np.arange(2), 0, 32)
    assert np.all(s.coefficients[:, 3:5] == 0)


def test_helmholtz_redraws_near_resonant_samples_and_stays_bounded():
    system = pdes.Helmholtz(omega_range=(1.9, 2.1))  # straddles the shell at omega = 1.974
    s = system.sample(np.arange(32), 0, 32)
    assert np.abs(s.outputs).max() <= 2.0
    unbounded = pdes.Helmholtz(omega_range=(1.9, 2.1), max_abs=None).sample(np.arange(32), 0, 32)
    assert np.abs(unbounded.outputs).max() > 2.0  # the check has something to reject


def test_integer_omega_draws_integers():
    s = pdes.Helmholtz(integer_omega=True).sample(np.arange(20), 0, 32)
    omega = s.coefficients[:, 5]
    assert np.all(omega == np.round(omega)) and omega.min() >= 1 and omega.max() <= 10


def test_source_matches_the_direct_sum_of_bumps():
    bumps = pdes.GaussianBumps()
    amplitudes = bumps.draw(np.random.default_rng(0), 1)[None]
    resolution = 32
    x = np.arange(resolution) / resolution
    X, Y = np.meshgrid(x, x, indexing="ij")
    direct = np.zeros_like(X)
    for p, cx in enumerate(bumps.centres()):
        for q, cy in enumerate(bumps.centres()):
            dx = (X - cx + 0.5) % 1 - 0.5
            dy = (Y - cy + 0.5) % 1 - 0.5
            direct += amplitudes[0, p, q] * np.exp(-(dx**2 + dy**2) / (2 * bumps.sigma**2))
    np.testing.assert_allclose(bumps.evaluate(amplitudes, resolution)[0], direct, atol=1e-13)
    assert bumps.centres()[0] == pytest.approx(0.15625) and bumps.centres()[-1] == pytest.approx(
        0.84375
    )


def test_source_sparsity_follows_vf():
    bumps = pdes.GaussianBumps()
    rng = np.random.default_rng(0)
    for index, vf in enumerate(bumps.vf_levels):
        on = np.mean([(bumps.draw(rng, index) > 0).mean() for _ in range(200)])
        assert on == pytest.approx(1 - vf, abs=0.02)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: pdes.Poisson(eig_range=(5, 1)), "eig_range"),
        (lambda: pdes.Poisson(eig_range=(0, 1)), "0 < low"),
        (lambda: pdes.AdvectionDiffusion(ratio_range=(-0.1, 1)), "ratio_range"),
        (lambda: pdes.Helmholtz(omega_range=(3, 2)), "omega_range"),
        (lambda: pdes.Helmholtz(omega_range=(0.01 * 4 * np.pi**2 * 5,) * 2), "resonant"),
        (lambda: pdes.Helmholtz(omega_range=(1.2, 1.8), integer_omega=True), "no integer"),
        (lambda: pdes.get_system("heat"), "poisson, advdiff, helmholtz"),
    ],
)
def test_bad_parameters_are_refused_with_a_clear_message(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_symbol_parts_agree_with_symbol():
    c = np.array([_random_coefficients("advdiff", RNG)])
    real, imag = _spectral.symbol_parts(c, 16)
    np.testing.assert_array_equal(_spectral.symbol(c, 16), real + 1j * imag)


@pytest.mark.parametrize(
    "system",
    [
        pdes.Poisson(),
        pdes.AdvectionDiffusion(ratio_range=(0.01, 5)),
        pdes.Helmholtz(omega_range=(1.5, 2.5)),
    ],
    ids=lambda s: s.name,
)
def test_a_sample_does_not_depend_on_its_batch(system):
    """Bit-for-bit in float64: what else is solved alongside a sample changes nothing."""
    whole = system.sample(np.arange(48), 11, 32)
    parts = [system.sample(np.arange(lo, hi), 11, 32) for lo, hi in ((0, 5), (5, 30), (30, 48))]
    for name, full in whole._asdict().items():
        np.testing.assert_array_equal(
            full, np.concatenate([getattr(p, name) for p in parts]), err_msg=name
        )
