"""Settings shared by the tests that run real sweeps: the demo study at toy size (16x16, the
smallest preset, a few steps), about ten seconds a sweep on 2 cores."""

TINY = [
    "resolution=16",
    'presets=["fno-64k"]',
    'downstream=["poisson-ood"]',
    "n_values=[4, 8]",
    "lr_grid=[1e-3, 3e-3]",
    "steps=6",
    "validations=2",
    "n_val=8",
    "n_test=8",
    "pretrain.n=32",
    "pretrain.n_val=8",
    "pretrain.epochs=2",
    'strategies=["full"]',
]
ONE_RATE = [*TINY, "lr_grid=[1e-3]"]  # the same with one learning rate (a later key wins)
