"""The one check every runner makes of a federation's clients before training (in process, the
Flower launcher's local files, the Flower server's joined labs)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from scifm._checks import UserError


def check_clients(
    layouts: Mapping[str, object], sizes: Mapping[str, int], batch_size: int,
    show: Callable[[object], str] = str,
) -> None:  # fmt: skip
    """Every client holds the first one's layout (channels and grid, compared with ``==``;
    ``show`` writes one in the error) and at least ``batch_size`` samples.

    Raises:
        ValueError: the first client that differs or is too small, in one line.
    """
    names = list(layouts)
    first = names[0]
    for name in names:
        if layouts[name] != layouts[first]:
            raise UserError(
                f"client {name} holds {show(layouts[name])} but client {first} holds "
                f"{show(layouts[first])}; every client of one federation needs the same "
                "channels and grid"
            )
        if sizes[name] < batch_size:
            raise UserError(
                f"client {name} holds {sizes[name]} samples, fewer than the batch size "
                f"{batch_size}; lower the batch size or give it more data"
            )


def show_layout(layout) -> str:
    """``(input names, output names, grid)`` as an error writes it."""
    inputs, outputs, grid = layout
    return f"{list(inputs)} -> {list(outputs)} on {grid[0]}x{grid[1]}"
