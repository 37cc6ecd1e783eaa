"""Money as a person reads it: cents for ordinary sums, significant digits for the fractions
of a cent a few small blobs cost (a blob's month is $0.0000178, never "0.0000")."""

from __future__ import annotations


def amount(value: float) -> str:
    """12.35, 0.0169, 1.782e-05; 0 is 0.00."""
    if value == 0 or abs(value) >= 1:
        return f"{value:,.2f}"
    return f"{value:.4g}"
