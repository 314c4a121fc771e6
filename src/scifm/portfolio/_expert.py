"""The one-step greedy expert in hindsight that behaviour cloning imitates (Yu et al., BCM).

Given the coming period's price relatives ``u`` (cash first, ``u_0 = 1``), the weights held now
``p`` and the proportional cost ``c`` (risky assets only; cash is free), the expert solves the
linear programme

    maximise  u . w - c sum_{i > 0} |w_i - p_i|   over the simplex (w >= 0, sum w = 1).

Closed form: moving a fraction d of wealth from asset j to asset k changes the objective by
``d (u_k - c_k) - d (u_j + c_j)`` while j is sold below ``p_j`` and k bought above ``p_k``
(``c_0 = 0``, ``c_i = c``), so the optimum buys only ``k* = argmax_k (u_k - c_k)`` and sells,
entirely, every asset with ``u_j + c_j < u_k* - c_k*``; the others keep their weights. (Tested
against SciPy's LP solver.)
"""

from __future__ import annotations

import numpy as np


def greedy_expert(u, previous, cost: float) -> np.ndarray:
    """The LP optimum of the module docstring (ties: the first best asset, keep when equal)."""
    u, p = np.asarray(u, np.float64), np.asarray(previous, np.float64)
    c = np.full(len(u), float(cost))
    c[0] = 0.0
    best = int(np.argmax(u - c))
    sell = (u + c) < (u[best] - c[best])
    sell[best] = False
    w = np.where(sell, 0.0, p)
    w[best] += p[sell].sum()
    return w
